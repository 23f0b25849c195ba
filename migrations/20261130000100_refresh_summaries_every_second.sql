-- Up Migration
-- Summaries within seconds of the raw rows. pg_cron 1.4 starts a job at most
-- once a minute, so the minute's job now refreshes once a second for most of
-- its minute, committing each refresh: readers see a bucket about a second
-- after its rows commit, and `SELECT * FROM stock_price_summary` stays what
-- users type. A refresh with nothing touched deletes nothing and returns.
-- The job ends before the next minute's start (pg_cron never runs two at
-- once); `npm run etl` and the job share the refresh's advisory lock.
create procedure etl.refresh_summaries_for(
  seconds integer default 58,
  pause_seconds double precision default 1
)
language plpgsql
as $$
declare
  deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
  stock_buckets integer;
  sales_buckets integer;
begin
  loop
    call etl.refresh_summaries(false, stock_buckets, sales_buckets);
    commit;
    exit when clock_timestamp() + make_interval(secs => pause_seconds) >= deadline;
    perform pg_sleep(pause_seconds);
  end loop;
end $$;

grant execute on procedure etl.refresh_summaries_for(integer, double precision) to pipeline_etl;
revoke execute on procedure etl.refresh_summaries_for(integer, double precision) from public;

do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.alter_job(jobid, command := 'CALL etl.refresh_summaries_for(58)') from cron.job where jobname = 'refresh-summaries';
  end if;
end $$;

-- Down Migration
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.alter_job(jobid, command := 'CALL etl.refresh_summaries()') from cron.job where jobname = 'refresh-summaries';
  end if;
end $$;

drop procedure etl.refresh_summaries_for(integer, double precision);
