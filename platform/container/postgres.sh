#!/bin/bash
# PostgreSQL 15 with pg_cron in a container: the cluster is made in the volume
# on first start, with the admin role, the pipeline's and the registry's
# databases and pg_cron, as platform/postgres.mjs makes them natively. The
# pipeline's own roles and tables come from migrations/ (the `init` service).
# Passwords only through the environment (PG_ADMIN_PASSWORD, REGISTRY_DB_PASSWORD).
set -euo pipefail
: "${PG_ADMIN_USER:?}" "${PG_ADMIN_PASSWORD:?}" "${PG_DATABASE:?}" "${REGISTRY_DB:?}" "${REGISTRY_DB_USER:?}" "${REGISTRY_DB_PASSWORD:?}"
bin=/usr/lib/postgresql/15/bin

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$PG_ADMIN_USER" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
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
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  export PGPASSWORD="$PG_ADMIN_PASSWORD"
  psql=(psql -v ON_ERROR_STOP=1 -qAt -h /tmp -U "$PG_ADMIN_USER" -d postgres)
  "${psql[@]}" -v db="$PG_DATABASE" -v reg_db="$REGISTRY_DB" -v reg_user="$REGISTRY_DB_USER" -v reg_pw="$REGISTRY_DB_PASSWORD" <<'SQL'
create database :"db";
create role :"reg_user" login password :'reg_pw';
create database :"reg_db" owner :"reg_user";
revoke all on database :"reg_db" from public;
\c :"db"
create extension if not exists pg_cron;
SQL
  unset PGPASSWORD
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres.sh: cluster made in $PGDATA"
fi
exec "$bin/postgres" -D "$PGDATA"
