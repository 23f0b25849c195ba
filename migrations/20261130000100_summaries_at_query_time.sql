-- Up Migration
-- Summaries fresh the moment rows land. pg_cron 1.4 runs a job once a minute
-- at best, so what users query is now a view: the buckets the last refresh
-- stored, except the ones touched since, which are computed from the raw rows
-- at query time (TimescaleDB's real-time aggregates work this way).
-- `SELECT * FROM stock_price_summary` stays what users type; the minute's
-- refresh keeps the part computed at query time small.
--
-- And one pass over the raw rows per bucket instead of one per summary: both
-- summaries are built from the same 10-minute partials.

-- The stored buckets move out of the way, into the etl schema: only the ETL
-- writes them, and readers see them through the views.
alter table public.stock_price_summary set schema etl;
alter table etl.stock_price_summary rename to stock_price_buckets;
alter index etl.stock_price_summary_pkey rename to stock_price_buckets_pkey;
alter table public.sales_trend_summary set schema etl;
alter table etl.sales_trend_summary rename to sales_trend_buckets;
alter index etl.sales_trend_summary_pkey rename to sales_trend_buckets_pkey;
revoke select on etl.stock_price_buckets, etl.sales_trend_buckets from pipeline_reader;
comment on table etl.stock_price_buckets is 'The 10-minute buckets as of the last etl.refresh_summaries(); read public.stock_price_summary instead.';
comment on table etl.sales_trend_buckets is 'The 20-minute buckets as of the last etl.refresh_summaries(); read public.sales_trend_summary instead.';

drop view etl.stock_price_rollup;
drop view etl.sales_trend_rollup;

-- Everything both summaries need of the 10-minute buckets in [from_start,
-- to_start), in one pass over their rows. A 20-minute bucket is two 10-minute
-- ones: its count, min, max, first and last follow exactly from its halves',
-- its average from their sums (two terms add to the same float in either
-- order, so every path agrees to the bit). First and last are the rows with
-- the earliest and latest timestamp, ties by id: min/max over float8 (epoch,
-- id, stock, sales) arrays, without a sort per bucket.
-- A plain SQL function, so PostgreSQL inlines it: called with one bucket's
-- bounds it reads that bucket's rows by the timestamp index; called with
-- -infinity and infinity it is the whole table. OFFSET 0 builds each row's
-- array once for both min and max (a third of the full recompute's time).
create function etl.samples_10m_in(from_start timestamptz, to_start timestamptz)
returns table (
  bucket_start timestamptz,
  sample_count integer,
  stock_sum double precision,
  stock_min double precision,
  stock_max double precision,
  sales_sum double precision,
  sales_min double precision,
  sales_max double precision,
  first_sample double precision[],
  last_sample double precision[]
)
language sql stable
as $$
  select
    bucket_start,
    count(*)::integer,
    sum(stock_price),
    min(stock_price),
    max(stock_price),
    sum(sales_trend),
    min(sales_trend),
    max(sales_trend),
    min(sample),
    max(sample)
  from (
    select
      etl.bucket_10m("timestamp") as bucket_start,
      stock_price,
      sales_trend,
      array[date_part('epoch', "timestamp"), id, stock_price, sales_trend] as sample
    from public.synthetic_data
    -- The bounds are bucket starts, so comparing the timestamp itself is the
    -- same test, without a date_bin per row, and it reaches the index.
    where "timestamp" >= from_start and "timestamp" < to_start
    offset 0
  ) as samples
  group by bucket_start
$$;

-- The summaries' definitions, each in one place: the buckets starting in
-- [from_start, to_start) (whole 20-minute buckets for the sales), computed
-- from the raw rows. sum / count is avg's own arithmetic (a running sum
-- divided by the count).
create function etl.stock_price_rollup_in(from_start timestamptz, to_start timestamptz)
returns table (
  interval_start timestamptz,
  interval_end timestamptz,
  avg_stock_price double precision,
  min_stock_price double precision,
  max_stock_price double precision,
  first_stock_price double precision,
  last_stock_price double precision,
  sample_count integer
)
language sql stable
as $$
  select
    bucket_start,
    bucket_start + interval '10 minutes',
    stock_sum / sample_count,
    stock_min,
    stock_max,
    first_sample[3],
    last_sample[3],
    sample_count
  from etl.samples_10m_in(from_start, to_start)
$$;

create function etl.sales_trend_rollup_in(from_start timestamptz, to_start timestamptz)
returns table (
  interval_start timestamptz,
  interval_end timestamptz,
  avg_sales_trend double precision,
  min_sales_trend double precision,
  max_sales_trend double precision,
  first_sales_trend double precision,
  last_sales_trend double precision,
  sample_count integer
)
language sql stable
as $$
  select
    etl.bucket_20m(bucket_start),
    etl.bucket_20m(bucket_start) + interval '20 minutes',
    sum(sales_sum) / sum(sample_count),
    min(sales_min),
    max(sales_max),
    (min(first_sample))[4],
    (max(last_sample))[4],
    sum(sample_count)::integer
  from etl.samples_10m_in(from_start, to_start)
  group by 1
$$;

-- The full recomputes, as views (what the tests hold the summaries to).
create view etl.samples_10m as select * from etl.samples_10m_in('-infinity', 'infinity');
create view etl.stock_price_rollup as select * from etl.stock_price_rollup_in('-infinity', 'infinity');
create view etl.sales_trend_rollup as select * from etl.sales_trend_rollup_in('-infinity', 'infinity');

-- Buckets are now read by their timestamp range, a 20-minute one as its two
-- 10-minute halves: one plain index instead of one per bucket width (each
-- cost every insert a date_bin and an index entry).
drop index public.synthetic_data_bucket_20m_idx;
drop index public.synthetic_data_bucket_10m_idx;
create index synthetic_data_timestamp_idx on public.synthetic_data ("timestamp");

-- What users query: the stored buckets, except those touched since the last
-- refresh, which are computed from the raw rows now, in the same snapshot.
-- refreshed_at is when a bucket was computed: by the last refresh, or by this
-- very query. A bucket touched since is computed on its own, by index, and a
-- filter on interval_start reaches the touched list first: a query for a day
-- computes only that day's touched buckets.
create view public.stock_price_summary as
  select b.interval_start, b.interval_end, b.avg_stock_price, b.min_stock_price, b.max_stock_price,
         b.first_stock_price, b.last_stock_price, b.sample_count, b.refreshed_at
  from etl.stock_price_buckets as b
  where not exists (select from etl.touched_buckets as t where t.bucket_start = b.interval_start)
  union all
  select t.interval_start, r.interval_end, r.avg_stock_price, r.min_stock_price, r.max_stock_price,
         r.first_stock_price, r.last_stock_price, r.sample_count, statement_timestamp()
  from (select distinct bucket_start as interval_start from etl.touched_buckets) as t,
    lateral etl.stock_price_rollup_in(t.interval_start, t.interval_start + interval '10 minutes') as r;

create view public.sales_trend_summary as
  select b.interval_start, b.interval_end, b.avg_sales_trend, b.min_sales_trend, b.max_sales_trend,
         b.first_sales_trend, b.last_sales_trend, b.sample_count, b.refreshed_at
  from etl.sales_trend_buckets as b
  where not exists (select from etl.touched_buckets as t where etl.bucket_20m(t.bucket_start) = b.interval_start)
  union all
  select t.interval_start, r.interval_end, r.avg_sales_trend, r.min_sales_trend, r.max_sales_trend,
         r.first_sales_trend, r.last_sales_trend, r.sample_count, statement_timestamp()
  from (select distinct etl.bucket_20m(bucket_start) as interval_start from etl.touched_buckets) as t,
    lateral etl.sales_trend_rollup_in(t.interval_start, t.interval_start + interval '20 minutes') as r;

comment on view public.stock_price_summary is '10-minute buckets of synthetic_data.stock_price, always current: stored by etl.refresh_summaries() (pg_cron, every minute), the buckets touched since computed at query time.';
comment on view public.sales_trend_summary is '20-minute buckets of synthetic_data.sales_trend, always current: stored by etl.refresh_summaries() (pg_cron, every minute), the buckets touched since computed at query time.';

grant select on public.stock_price_summary, public.sales_trend_summary to pipeline_reader, pipeline_etl;
-- PostgreSQL inlines the etl.*_in functions into the reader's query, as the
-- reader: it needs to see the schema (it may read the recompute views in it,
-- never the stored buckets or the touched list).
grant usage on schema etl to pipeline_reader;

-- The touched list is a queue every read of the views now joins: rows come
-- and go by the hundred thousand an hour under load. Vacuum and analyze it by
-- a fixed count, not a fifth of its size, so its dead rows and the planner's
-- idea of its size stay small.
alter table etl.touched_buckets set (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 10000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 10000
);
grant select on etl.samples_10m, etl.stock_price_rollup, etl.sales_trend_rollup to pipeline_etl, pipeline_reader;

-- A truncate of the raw table marks every stored bucket as touched (see the
-- 20261125 migration), now read from their new place.
create or replace function etl.note_truncate() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into etl.touched_buckets (bucket_start)
  select interval_start from etl.stock_price_buckets
  union
  -- A 20-minute bucket is two 10-minute ones; its start names it.
  select interval_start from etl.sales_trend_buckets;
  return null;
end $$;

-- Refreshes both stored summaries in one transaction. Incremental by default:
-- only the buckets touched since the last run. Past a few thousand touched
-- buckets (a bulk load) a full rebuild is cheaper, and gives the same result:
-- it writes only the buckets whose values changed (no dead tuples,
-- refreshed_at stays) and deletes those with no rows left.
create or replace procedure etl.refresh_summaries(
  full_rebuild boolean default false,
  inout stock_buckets integer default null,
  inout sales_buckets integer default null
)
language plpgsql
-- A full rebuild groups 50,000 buckets: hashed in memory, not spilled to disk.
set work_mem = '64MB'
-- A parallel plan would sum the bucket's values in another order.
set max_parallel_workers_per_gather = 0
as $$
declare
  touched timestamptz[];
  touched_20m timestamptz[];
begin
  -- pg_cron and `npm run etl` may meet: one refresh at a time.
  perform pg_advisory_xact_lock(hashtext('etl.refresh_summaries'));

  with claimed as (
    delete from etl.touched_buckets returning bucket_start
  )
  select array_agg(distinct bucket_start) into touched from claimed;

  if full_rebuild or coalesce(cardinality(touched), 0) > 5000 then
    -- One pass over the raw rows for both summaries: the 10-minute partials
    -- once, then each summary from them, by the same formulas as
    -- etl.stock_price_rollup_in and etl.sales_trend_rollup_in (the tests hold
    -- the stored buckets equal to those, to the bit).
    with s as materialized (
      select * from etl.samples_10m
    ),
    stock as (
      select bucket_start as interval_start, bucket_start + interval '10 minutes' as interval_end,
             stock_sum / sample_count as avg_stock_price, stock_min as min_stock_price, stock_max as max_stock_price,
             first_sample[3] as first_stock_price, last_sample[3] as last_stock_price, sample_count
      from s
    ),
    sales as (
      select etl.bucket_20m(bucket_start) as interval_start, etl.bucket_20m(bucket_start) + interval '20 minutes' as interval_end,
             sum(sales_sum) / sum(sample_count) as avg_sales_trend, min(sales_min) as min_sales_trend, max(sales_max) as max_sales_trend,
             (min(first_sample))[4] as first_sales_trend, (max(last_sample))[4] as last_sales_trend, sum(sample_count)::integer as sample_count
      from s
      group by 1
    ),
    -- One full join per summary finds both what changed or is new and what
    -- has no rows left.
    stock_diff as materialized (
      select r.*, b.interval_start as stored_start
      from stock as r full join etl.stock_price_buckets as b on b.interval_start = r.interval_start
      where (b.interval_end, b.avg_stock_price, b.min_stock_price, b.max_stock_price, b.first_stock_price, b.last_stock_price, b.sample_count)
        is distinct from (r.interval_end, r.avg_stock_price, r.min_stock_price, r.max_stock_price, r.first_stock_price, r.last_stock_price, r.sample_count)
    ),
    stock_changed as (
      insert into etl.stock_price_buckets as t (interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count)
      select interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count
      from stock_diff where interval_start is not null
      on conflict (interval_start) do update set
        interval_end = excluded.interval_end,
        avg_stock_price = excluded.avg_stock_price,
        min_stock_price = excluded.min_stock_price,
        max_stock_price = excluded.max_stock_price,
        first_stock_price = excluded.first_stock_price,
        last_stock_price = excluded.last_stock_price,
        sample_count = excluded.sample_count,
        refreshed_at = now()
      returning 1
    ),
    stock_gone as (
      delete from etl.stock_price_buckets as t using stock_diff as d
      where d.interval_start is null and t.interval_start = d.stored_start
    ),
    sales_diff as materialized (
      select r.*, b.interval_start as stored_start
      from sales as r full join etl.sales_trend_buckets as b on b.interval_start = r.interval_start
      where (b.interval_end, b.avg_sales_trend, b.min_sales_trend, b.max_sales_trend, b.first_sales_trend, b.last_sales_trend, b.sample_count)
        is distinct from (r.interval_end, r.avg_sales_trend, r.min_sales_trend, r.max_sales_trend, r.first_sales_trend, r.last_sales_trend, r.sample_count)
    ),
    sales_changed as (
      insert into etl.sales_trend_buckets as t (interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count)
      select interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count
      from sales_diff where interval_start is not null
      on conflict (interval_start) do update set
        interval_end = excluded.interval_end,
        avg_sales_trend = excluded.avg_sales_trend,
        min_sales_trend = excluded.min_sales_trend,
        max_sales_trend = excluded.max_sales_trend,
        first_sales_trend = excluded.first_sales_trend,
        last_sales_trend = excluded.last_sales_trend,
        sample_count = excluded.sample_count,
        refreshed_at = now()
      returning 1
    ),
    sales_gone as (
      delete from etl.sales_trend_buckets as t using sales_diff as d
      where d.interval_start is null and t.interval_start = d.stored_start
    )
    select (select count(*) from stock_changed), (select count(*) from sales_changed) into stock_buckets, sales_buckets;
    return;
  end if;

  stock_buckets := 0;
  sales_buckets := 0;
  if touched is null then
    return;
  end if;
  select array_agg(distinct etl.bucket_20m(b)) into touched_20m from unnest(touched) as b;

  -- Delete, then insert: a bucket whose rows are all gone disappears too.
  delete from etl.stock_price_buckets where interval_start = any(touched);
  insert into etl.stock_price_buckets (interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count)
  select r.* from unnest(touched) as b, etl.stock_price_rollup_in(b, b + interval '10 minutes') as r;
  get diagnostics stock_buckets = row_count;

  delete from etl.sales_trend_buckets where interval_start = any(touched_20m);
  insert into etl.sales_trend_buckets (interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count)
  select r.* from unnest(touched_20m) as b, etl.sales_trend_rollup_in(b, b + interval '20 minutes') as r;
  get diagnostics sales_buckets = row_count;
end $$;

-- The 20-minute averages are now the sum of their halves' sums over the
-- count: rewrite the stored ones that differ in the last bit.
call etl.refresh_summaries(true);

-- Down Migration
drop view public.sales_trend_summary;
drop view public.stock_price_summary;
revoke usage on schema etl from pipeline_reader;
alter table etl.touched_buckets reset (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
drop procedure etl.refresh_summaries(boolean, integer, integer);
drop view etl.sales_trend_rollup;
drop view etl.stock_price_rollup;
drop view etl.samples_10m;
drop function etl.sales_trend_rollup_in(timestamptz, timestamptz);
drop function etl.stock_price_rollup_in(timestamptz, timestamptz);
drop function etl.samples_10m_in(timestamptz, timestamptz);
drop index public.synthetic_data_timestamp_idx;
create index synthetic_data_bucket_10m_idx on public.synthetic_data (etl.bucket_10m("timestamp"));
create index synthetic_data_bucket_20m_idx on public.synthetic_data (etl.bucket_20m("timestamp"));

alter index etl.stock_price_buckets_pkey rename to stock_price_summary_pkey;
alter table etl.stock_price_buckets rename to stock_price_summary;
alter table etl.stock_price_summary set schema public;
alter index etl.sales_trend_buckets_pkey rename to sales_trend_summary_pkey;
alter table etl.sales_trend_buckets rename to sales_trend_summary;
alter table etl.sales_trend_summary set schema public;
grant select on public.stock_price_summary, public.sales_trend_summary to pipeline_reader;
comment on table public.stock_price_summary is '10-minute buckets of synthetic_data.stock_price; refreshed by etl.refresh_summaries() (pg_cron, every minute).';
comment on table public.sales_trend_summary is '20-minute buckets of synthetic_data.sales_trend; refreshed by etl.refresh_summaries() (pg_cron, every minute).';

create or replace function etl.note_truncate() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into etl.touched_buckets (bucket_start)
  select interval_start from public.stock_price_summary
  union
  select interval_start from public.sales_trend_summary;
  return null;
end $$;

-- The previous definitions, as the 20261124000400 migration made them.
create view etl.stock_price_rollup as
  with source as (
    select etl.bucket_10m("timestamp") as interval_start, "timestamp", id, stock_price
    from public.synthetic_data
  ),
  final as (
    select
      interval_start,
      interval_start + interval '10 minutes' as interval_end,
      avg(stock_price) as avg_stock_price,
      min(stock_price) as min_stock_price,
      max(stock_price) as max_stock_price,
      (min(array[date_part('epoch', "timestamp"), id, stock_price]))[3] as first_stock_price,
      (max(array[date_part('epoch', "timestamp"), id, stock_price]))[3] as last_stock_price,
      count(*)::integer as sample_count
    from source
    group by interval_start
  )
  select * from final;

create view etl.sales_trend_rollup as
  with source as (
    select etl.bucket_20m("timestamp") as interval_start, "timestamp", id, sales_trend
    from public.synthetic_data
  ),
  final as (
    select
      interval_start,
      interval_start + interval '20 minutes' as interval_end,
      avg(sales_trend) as avg_sales_trend,
      min(sales_trend) as min_sales_trend,
      max(sales_trend) as max_sales_trend,
      (min(array[date_part('epoch', "timestamp"), id, sales_trend]))[3] as first_sales_trend,
      (max(array[date_part('epoch', "timestamp"), id, sales_trend]))[3] as last_sales_trend,
      count(*)::integer as sample_count
    from source
    group by interval_start
  )
  select * from final;

create procedure etl.refresh_summaries(
  full_rebuild boolean default false,
  inout stock_buckets integer default null,
  inout sales_buckets integer default null
)
language plpgsql
set work_mem = '64MB'
as $$
declare
  touched timestamptz[];
  touched_20m timestamptz[];
begin
  perform pg_advisory_xact_lock(hashtext('etl.refresh_summaries'));

  with claimed as (
    delete from etl.touched_buckets returning bucket_start
  )
  select array_agg(distinct bucket_start) into touched from claimed;

  if full_rebuild or coalesce(cardinality(touched), 0) > 5000 then
    insert into public.stock_price_summary as t (interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count)
    select * from etl.stock_price_rollup
    on conflict (interval_start) do update set
      interval_end = excluded.interval_end,
      avg_stock_price = excluded.avg_stock_price,
      min_stock_price = excluded.min_stock_price,
      max_stock_price = excluded.max_stock_price,
      first_stock_price = excluded.first_stock_price,
      last_stock_price = excluded.last_stock_price,
      sample_count = excluded.sample_count,
      refreshed_at = now()
    where (t.interval_end, t.avg_stock_price, t.min_stock_price, t.max_stock_price, t.first_stock_price, t.last_stock_price, t.sample_count)
      is distinct from (excluded.interval_end, excluded.avg_stock_price, excluded.min_stock_price, excluded.max_stock_price, excluded.first_stock_price, excluded.last_stock_price, excluded.sample_count);
    get diagnostics stock_buckets = row_count;
    delete from public.stock_price_summary as t
    where not exists (select from public.synthetic_data as s where etl.bucket_10m(s."timestamp") = t.interval_start);

    insert into public.sales_trend_summary as t (interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count)
    select * from etl.sales_trend_rollup
    on conflict (interval_start) do update set
      interval_end = excluded.interval_end,
      avg_sales_trend = excluded.avg_sales_trend,
      min_sales_trend = excluded.min_sales_trend,
      max_sales_trend = excluded.max_sales_trend,
      first_sales_trend = excluded.first_sales_trend,
      last_sales_trend = excluded.last_sales_trend,
      sample_count = excluded.sample_count,
      refreshed_at = now()
    where (t.interval_end, t.avg_sales_trend, t.min_sales_trend, t.max_sales_trend, t.first_sales_trend, t.last_sales_trend, t.sample_count)
      is distinct from (excluded.interval_end, excluded.avg_sales_trend, excluded.min_sales_trend, excluded.max_sales_trend, excluded.first_sales_trend, excluded.last_sales_trend, excluded.sample_count);
    get diagnostics sales_buckets = row_count;
    delete from public.sales_trend_summary as t
    where not exists (select from public.synthetic_data as s where etl.bucket_20m(s."timestamp") = t.interval_start);
    return;
  end if;

  stock_buckets := 0;
  sales_buckets := 0;
  if touched is null then
    return;
  end if;
  select array_agg(distinct etl.bucket_20m(b)) into touched_20m from unnest(touched) as b;

  delete from public.stock_price_summary where interval_start = any(touched);
  insert into public.stock_price_summary (interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count)
  select * from etl.stock_price_rollup where interval_start = any(touched);
  get diagnostics stock_buckets = row_count;

  delete from public.sales_trend_summary where interval_start = any(touched_20m);
  insert into public.sales_trend_summary (interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count)
  select * from etl.sales_trend_rollup where interval_start = any(touched_20m);
  get diagnostics sales_buckets = row_count;
end $$;

grant select on etl.stock_price_rollup, etl.sales_trend_rollup to pipeline_etl, pipeline_reader;
grant execute on procedure etl.refresh_summaries(boolean, integer, integer) to pipeline_etl;
revoke execute on procedure etl.refresh_summaries(boolean, integer, integer) from public;
