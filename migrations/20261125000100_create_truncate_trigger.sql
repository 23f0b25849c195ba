-- Up Migration
-- TRUNCATE fires no insert, update or delete trigger, so the incremental
-- refresh never heard of it and the summaries kept buckets whose rows were
-- gone. Now a truncate of the raw table marks every bucket the summaries hold
-- as touched: the next refresh finds them empty and deletes them (past 5,000
-- buckets it takes the full-rebuild path, which does the same).
create function etl.note_truncate() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into etl.touched_buckets (bucket_start)
  select interval_start from public.stock_price_summary
  union
  -- A 20-minute bucket is two 10-minute ones; its start names it.
  select interval_start from public.sales_trend_summary;
  return null;
end $$;

create trigger synthetic_data_touched_by_truncate
  after truncate on public.synthetic_data
  for each statement execute function etl.note_truncate();

-- Down Migration
drop trigger synthetic_data_touched_by_truncate on public.synthetic_data;
drop function etl.note_truncate();
