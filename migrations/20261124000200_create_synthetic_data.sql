-- Up Migration
-- The raw rows, written only by the Kafka Connect JDBC sink (upsert on id).
-- Migrations own the structure: the sink runs with schema.evolution=none.
create table synthetic_data (
  id bigint primary key,
  "timestamp" timestamptz not null,
  stock_price double precision not null,
  sales_trend double precision not null,
  -- The Kafka record's timestamp (producer send time), set by the sink's
  -- InsertField transform; with ingested_at it gives end-to-end latency in SQL.
  kafka_timestamp timestamptz,
  -- When the row last landed (insert or upsert), by the row trigger below.
  ingested_at timestamptz not null default clock_timestamp()
);

comment on table synthetic_data is 'One minute of synthetic stock price and sales trend per row; landed by Kafka Connect (connect/synthetic-data-sink.json).';

-- An upsert that changes a row must move ingested_at too: the sink only sets
-- the columns it has.
create function stamp_ingested_at() returns trigger
language plpgsql as $$
begin
  new.ingested_at := clock_timestamp();
  return new;
end $$;

create trigger synthetic_data_ingested_at
  before update on synthetic_data
  for each row execute function stamp_ingested_at();

grant select, insert, update on synthetic_data to pipeline_sink;
grant select on synthetic_data to pipeline_etl, pipeline_reader;

-- Down Migration
drop table synthetic_data;
drop function stamp_ingested_at();
