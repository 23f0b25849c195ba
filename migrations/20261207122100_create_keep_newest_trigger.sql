-- Up Migration
-- The newest version of a row wins, whatever the order it arrives in. The
-- sink upserts unconditionally (Debezium's INSERT ... ON CONFLICT (id) DO
-- UPDATE takes no WHERE), so a dead letter replayed after a correction of its
-- id had landed put the older value back. Replays now keep each record's
-- Kafka timestamp (producer/replay.ts), which lands in kafka_timestamp: an
-- update that carries an older one than the row's is skipped.
-- Equal timestamps apply: the later arrival wins, as before (the same record
-- sent again, or two versions sent in one millisecond). A NULL on either side
-- (a row written by hand, or an update that sets it so) cannot be ordered:
-- the update applies. An update by hand that leaves kafka_timestamp alone
-- carries the row's own, so it applies too.
-- A skipped row is in no transition table: the touched-bucket triggers
-- (20261124000400) do not mark its bucket, and its ingested_at stays.
-- Within one sink batch the sink itself keeps the last record per id
-- (use.reduction.buffer) before PostgreSQL sees either: this guards the
-- versions that land in different batches, a replay's among them.
create function skip_older_version() returns trigger
language plpgsql as $$
begin
  return null;
end $$;

-- The WHEN is evaluated without calling the function: an update that
-- applies, nearly every one, costs a comparison.
create trigger synthetic_data_keep_newest
  before update on synthetic_data
  for each row
  when (new.kafka_timestamp < old.kafka_timestamp)
  execute function skip_older_version();

comment on trigger synthetic_data_keep_newest on synthetic_data is
  'Skips an update that carries an older kafka_timestamp than the row: the newest version of an id wins, whatever the order of arrival.';

-- Down Migration
drop trigger synthetic_data_keep_newest on synthetic_data;
drop function skip_older_version();
