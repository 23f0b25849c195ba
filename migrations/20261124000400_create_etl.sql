-- Up Migration
-- The ETL: summaries refreshed incrementally, bucket by bucket, from the rows
-- that arrived or changed since the last run; or rebuilt in full.
create schema etl;
grant usage on schema etl to pipeline_etl;

-- Buckets are floor-aligned to the hour, in UTC.
create function etl.bucket_10m(ts timestamptz) returns timestamptz
language sql immutable parallel safe
return date_bin('10 minutes', ts, timestamptz '2000-01-01 00:00:00+00');

create function etl.bucket_20m(ts timestamptz) returns timestamptz
language sql immutable parallel safe
return date_bin('20 minutes', ts, timestamptz '2000-01-01 00:00:00+00');

-- The 10-minute buckets touched since the last refresh (a 20-minute bucket is
-- two of them). Append-only, no key: concurrent sink tasks never wait on each
-- other here. Rows of uncommitted transactions stay invisible to the ETL until
-- they commit, so a refresh can never claim a bucket before its rows.
create table etl.touched_buckets (
  bucket_start timestamptz not null
);
grant select, delete on etl.touched_buckets to pipeline_etl;

-- Statement-level triggers: one small insert per sink batch, not per row.
-- Security definer, so the sink needs no right on the etl schema.
create function etl.note_new_rows() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into etl.touched_buckets (bucket_start)
  select distinct etl.bucket_10m("timestamp") from new_rows;
  return null;
end $$;

create function etl.note_old_rows() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into etl.touched_buckets (bucket_start)
  select distinct etl.bucket_10m("timestamp") from old_rows;
  return null;
end $$;

create trigger synthetic_data_touched_by_insert
  after insert on public.synthetic_data
  referencing new table as new_rows
  for each statement execute function etl.note_new_rows();

-- An update may move a row to another bucket: both count.
create trigger synthetic_data_touched_by_update_new
  after update on public.synthetic_data
  referencing new table as new_rows
  for each statement execute function etl.note_new_rows();

create trigger synthetic_data_touched_by_update_old
  after update on public.synthetic_data
  referencing old table as old_rows
  for each statement execute function etl.note_old_rows();

create trigger synthetic_data_touched_by_delete
  after delete on public.synthetic_data
  referencing old table as old_rows
  for each statement execute function etl.note_old_rows();

-- The ETL reads the raw rows by bucket: these indexes let a refresh of a few
-- buckets read only their rows.
create index synthetic_data_bucket_10m_idx on public.synthetic_data (etl.bucket_10m("timestamp"));
create index synthetic_data_bucket_20m_idx on public.synthetic_data (etl.bucket_20m("timestamp"));

-- The summaries' definitions, each in one place: a full recompute from the raw
-- table. A refresh of some buckets filters on interval_start, which PostgreSQL
-- pushes below the grouping onto the bucket indexes. First and last values
-- come from min/max over float8 (epoch, id, value) arrays: the same answer as
-- array_agg with an ORDER BY, without a sort per bucket.
create view etl.stock_price_rollup as
  with source as (
    select
      etl.bucket_10m("timestamp") as interval_start,
      "timestamp",
      id,
      stock_price
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
    select
      etl.bucket_20m("timestamp") as interval_start,
      "timestamp",
      id,
      sales_trend
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

-- Refreshes both summaries in one transaction. Incremental by default: only
-- the buckets touched since the last run, late and redelivered rows included.
-- Past a few thousand touched buckets (a bulk load) a full rebuild is cheaper,
-- and gives the same result. Reports how many buckets it wrote (a full
-- rebuild writes only the buckets whose values changed).
create procedure etl.refresh_summaries(
  full_rebuild boolean default false,
  inout stock_buckets integer default null,
  inout sales_buckets integer default null
)
language plpgsql
-- A full rebuild groups 50,000 buckets: hashed in memory, not spilled to disk.
set work_mem = '64MB'
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
    -- Upsert what changed, delete what has no rows left: a bucket that is
    -- already right is not rewritten (no dead tuples, refreshed_at stays).
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

  -- Delete, then insert: a bucket whose rows are all gone disappears too.
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

-- Down Migration
drop procedure etl.refresh_summaries(boolean, integer, integer);
drop view etl.sales_trend_rollup;
drop view etl.stock_price_rollup;
drop index public.synthetic_data_bucket_20m_idx;
drop index public.synthetic_data_bucket_10m_idx;
drop trigger synthetic_data_touched_by_delete on public.synthetic_data;
drop trigger synthetic_data_touched_by_update_old on public.synthetic_data;
drop trigger synthetic_data_touched_by_update_new on public.synthetic_data;
drop trigger synthetic_data_touched_by_insert on public.synthetic_data;
drop function etl.note_old_rows();
drop function etl.note_new_rows();
drop table etl.touched_buckets;
drop function etl.bucket_20m(timestamptz);
drop function etl.bucket_10m(timestamptz);
drop schema etl;
