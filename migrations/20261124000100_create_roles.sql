-- Up Migration
-- One role per component, each with only what it needs (grants live with the
-- objects they open). Roles are cluster-wide, so creating them is idempotent;
-- passwords come from .env and are set by `npm run db:migrate`, never here.
do $$
declare
  r text;
begin
  foreach r in array array['pipeline_sink', 'pipeline_etl', 'pipeline_reader'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I login', r);
    end if;
  end loop;
end $$;

-- Nobody but these roles (and the owner) may connect to the pipeline's database.
do $$
begin
  execute format('revoke all on database %I from public', current_database());
  execute format('grant connect on database %I to pipeline_sink, pipeline_etl, pipeline_reader', current_database());
end $$;
revoke create on schema public from public;
grant usage on schema public to pipeline_sink, pipeline_etl, pipeline_reader;

-- Down Migration
do $$
begin
  execute format('revoke connect on database %I from pipeline_sink, pipeline_etl, pipeline_reader', current_database());
  execute format('grant connect, temporary on database %I to public', current_database());
end $$;
revoke usage on schema public from pipeline_sink, pipeline_etl, pipeline_reader;
-- Another database of the cluster (a test's copy) may still use a role: keep it then.
do $$
declare
  r text;
begin
  foreach r in array array['pipeline_sink', 'pipeline_etl', 'pipeline_reader'] loop
    begin
      execute format('drop role if exists %I', r);
    exception when dependent_objects_still_exist then
      raise notice 'role % kept: another database still grants it something', r;
    end;
  end loop;
end $$;
