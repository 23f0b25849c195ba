-- Up Migration
-- Summaries over floor-aligned buckets (10 and 20 minutes from the hour, UTC),
-- written only by etl.refresh_summaries(). The avg_* names are the original
-- demo's; the rest is added.
create table stock_price_summary (
  interval_start timestamptz primary key,
  interval_end timestamptz not null,
  avg_stock_price double precision not null,
  min_stock_price double precision not null,
  max_stock_price double precision not null,
  first_stock_price double precision not null,
  last_stock_price double precision not null,
  sample_count integer not null,
  refreshed_at timestamptz not null default now()
);

create table sales_trend_summary (
  interval_start timestamptz primary key,
  interval_end timestamptz not null,
  avg_sales_trend double precision not null,
  min_sales_trend double precision not null,
  max_sales_trend double precision not null,
  first_sales_trend double precision not null,
  last_sales_trend double precision not null,
  sample_count integer not null,
  refreshed_at timestamptz not null default now()
);

comment on table stock_price_summary is '10-minute buckets of synthetic_data.stock_price; refreshed by etl.refresh_summaries() (pg_cron, every minute).';
comment on table sales_trend_summary is '20-minute buckets of synthetic_data.sales_trend; refreshed by etl.refresh_summaries() (pg_cron, every minute).';

grant select, insert, update, delete on stock_price_summary, sales_trend_summary to pipeline_etl;
grant select on stock_price_summary, sales_trend_summary to pipeline_reader;

-- Down Migration
drop table sales_trend_summary;
drop table stock_price_summary;
