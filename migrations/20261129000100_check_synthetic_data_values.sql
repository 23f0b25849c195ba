-- Up Migration
-- The table refuses what the producer's validation refuses (producer/validate.ts),
-- so a record from any other producer cannot land a value ours would reject.
-- pgjdbc turns a timestamp before 4713 BC into -infinity, which would land
-- silently; now PostgreSQL refuses it, and the watchdog moves the refused
-- record to the dead letter queue (ops/refused.mjs). NaN sorts above
-- 'Infinity' in PostgreSQL, so "< 'Infinity'" refuses both.
-- NOT VALID, then VALIDATE: the check of the rows already there does not
-- block the sink's writes.
alter table synthetic_data
  add constraint synthetic_data_id_positive check (id > 0) not valid,
  add constraint synthetic_data_timestamp_finite check (isfinite("timestamp")) not valid,
  add constraint synthetic_data_stock_price_valid check (stock_price >= 0 and stock_price < 'Infinity') not valid,
  add constraint synthetic_data_sales_trend_valid check (sales_trend >= 0 and sales_trend < 'Infinity') not valid;
alter table synthetic_data validate constraint synthetic_data_id_positive;
alter table synthetic_data validate constraint synthetic_data_timestamp_finite;
alter table synthetic_data validate constraint synthetic_data_stock_price_valid;
alter table synthetic_data validate constraint synthetic_data_sales_trend_valid;

-- Down Migration
alter table synthetic_data
  drop constraint synthetic_data_id_positive,
  drop constraint synthetic_data_timestamp_finite,
  drop constraint synthetic_data_stock_price_valid,
  drop constraint synthetic_data_sales_trend_valid;
