#!/bin/bash
# PostgreSQL 15 with pg_cron in a container: the cluster is made in the volume
# on first start, with the admin role, the pipeline's and the registry's
# databases and pg_cron, as platform/postgres.mjs makes them natively. The
# pipeline's own roles and tables come from migrations/ (the `init` service).
# Passwords come from files only, the credentials service's share for this
# container (pg-admin, pg-registry and a pgpass file for psql), never from the
# environment, which `docker inspect` shows.
set -euo pipefail
: "${PG_ADMIN_USER:?}" "${PG_DATABASE:?}" "${REGISTRY_DB:?}" "${REGISTRY_DB_USER:?}"
bin=/usr/lib/postgresql/15/bin
creds=/var/lib/postgresql/credentials
admin_file=$creds/pg-admin.password
registry_file=$creds/pg-registry.password
for f in "$admin_file" "$registry_file"; do
  [ -s "$f" ] || { echo "postgres.sh: $f is missing: the credentials service writes it (docker compose up)" >&2; exit 1; }
done
umask 077
# Which passwords the cluster's roles were last given, as a digest: when the
# files change (a volume from before they were generated, made with the
# committed admin_local_only; or credentials made anew on the host), the roles
# follow them before the server opens its port.
stamp=$PGDATA/kafka-pg-pipeline.passwords
want=$({ printf '%s %s\n' "$PG_ADMIN_USER" "$REGISTRY_DB_USER"; cat "$admin_file" "$registry_file"; } | sha256sum | cut -d' ' -f1)

fresh=false
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$bin/initdb" -D "$PGDATA" -U "$PG_ADMIN_USER" --pwfile="$admin_file" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDATA/postgresql.conf" <<CONF
# kafka-pg-pipeline (platform/container/postgres.sh), as platform/postgres.mjs natively
listen_addresses = '*'
port = 5432
unix_socket_directories = '/tmp'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$PG_DATABASE'
cron.use_background_workers = on
max_worker_processes = 16
max_connections = 100
shared_buffers = '256MB'
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
# The image leaves out LLVM (130 MB); summaries are short aggregations anyway.
jit = off
CONF
  # The compose network and the host's published port, with passwords always.
  printf '%s\n' 'local all all scram-sha-256' 'host all all 0.0.0.0/0 scram-sha-256' 'host all all ::/0 scram-sha-256' >"$PGDATA/pg_hba.conf"
  fresh=true
fi

if $fresh || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # A server for this script alone: no TCP, its socket in a folder only this
  # user enters, trusted there, so the passwords are set whatever they were.
  # The server reads the password files itself (pg_read_file): no password
  # is in an argument, in psql's input or in a statement the log could show.
  sock=$(mktemp -d)
  hba=$(mktemp)
  echo 'local all all trust' >"$hba"
  "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c hba_file='$hba' -c log_statement=none -c log_min_error_statement=panic -c log_min_messages=fatal" start >/dev/null
  # Idempotent: a start that died half-way through the first one resumes here.
  if ! PGOPTIONS='-c client_min_messages=warning' "$bin/psql" -X -v ON_ERROR_STOP=1 -qAt -h "$sock" -U "$PG_ADMIN_USER" -d postgres \
    -v db="$PG_DATABASE" -v reg_db="$REGISTRY_DB" -v reg_user="$REGISTRY_DB_USER" \
    -v admin="$PG_ADMIN_USER" -v admin_file="$admin_file" -v reg_file="$registry_file" <<'SQL'; then
\set VERBOSITY terse
select format('create role %I login', :'reg_user') where not exists (select from pg_roles where rolname = :'reg_user') \gexec
select format('create database %I', :'db') where not exists (select from pg_database where datname = :'db') \gexec
select format('create database %I owner %I', :'reg_db', :'reg_user') where not exists (select from pg_database where datname = :'reg_db') \gexec
revoke all on database :"reg_db" from public;
select set_config('kpp.admin', :'admin', false), set_config('kpp.admin_file', :'admin_file', false),
       set_config('kpp.reg_user', :'reg_user', false), set_config('kpp.reg_file', :'reg_file', false) \g /dev/null
do $$
begin
  execute format('alter role %I password %L', current_setting('kpp.admin'), btrim(pg_read_file(current_setting('kpp.admin_file')), E'\r\n'));
  execute format('alter role %I password %L', current_setting('kpp.reg_user'), btrim(pg_read_file(current_setting('kpp.reg_file')), E'\r\n'));
end
$$;
\c :"db"
create extension if not exists pg_cron;
SQL
    "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres.sh: could not set up the cluster in this volume (above); if PG_ADMIN_USER changed since it was made, set it back, or start afresh with \`docker compose down -v\` (which deletes the data)" >&2
    exit 1
  fi
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  rm -rf "$sock" "$hba"
  printf '%s\n' "$want" >"$stamp"
  if $fresh; then
    echo "postgres.sh: cluster made in $PGDATA"
  else
    echo "postgres.sh: the passwords of $PG_ADMIN_USER and $REGISTRY_DB_USER set from the generated credentials"
  fi
fi
exec "$bin/postgres" -D "$PGDATA"
