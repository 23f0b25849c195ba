-- Up Migration
-- Keep the summaries fresh: every minute (pg_cron 1.4's finest schedule),
-- refresh the buckets touched since the last run; a no-op when nothing came.
-- The job runs as the ETL role, not as the migration's. pg_cron lives in one
-- database of the cluster (cron.database_name): elsewhere, as in a test's
-- scratch database, there is nothing to schedule.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('refresh-summaries', '* * * * *', 'CALL etl.refresh_summaries()');
    perform cron.alter_job(jobid, username := 'pipeline_etl') from cron.job where jobname = 'refresh-summaries';
    -- pg_cron keeps a row per run: keep a day of them.
    perform cron.schedule('purge-cron-history', '17 * * * *', $job$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '1 day'$job$);
  end if;
end $$;

-- Down Migration
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    -- By id: by name, pg_cron only finds jobs of the current user, and
    -- refresh-summaries runs as pipeline_etl.
    perform cron.unschedule(jobid) from cron.job where jobname in ('refresh-summaries', 'purge-cron-history');
  end if;
end $$;
