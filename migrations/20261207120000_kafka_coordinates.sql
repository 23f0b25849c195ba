-- Up Migration
-- Where each row's version came from in Kafka: the partition and offset of
-- the record the sink landed (its InsertField transform sets them, with
-- kafka_timestamp). A record PostgreSQL refuses is then named exactly by the
-- failing statement, and the watchdog can prove that every record before it
-- in its partition landed before it moves the sink past it (ops/refused.mjs).
-- Null on rows landed before this column existed, or written by hand.
alter table synthetic_data
  add column kafka_partition integer,
  add column kafka_offset bigint;

comment on column synthetic_data.kafka_partition is 'Partition of the Kafka record this version of the row came from (set by the sink).';
comment on column synthetic_data.kafka_offset is 'Offset of the Kafka record this version of the row came from (set by the sink).';

-- Down Migration
alter table synthetic_data
  drop column kafka_partition,
  drop column kafka_offset;
