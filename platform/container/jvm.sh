#!/bin/bash
# The broker or the Connect worker, from the kafka image: `jvm.sh kafka|connect`.
# Their properties were made at build time by platform/container/render.mjs
# from the functions the native platform uses; the values a user may change
# without rebuilding (KAFKA_PORT, CONNECT_GROUP_ID) are filled in here, and
# the worker's secrets are read from the files the credentials service put
# into its volume (/opt/kafka/credentials), never from the container's
# environment, which `docker inspect` shows.
set -euo pipefail
conf=/opt/kafka/config
cp='/opt/kafka/libs/*'
log4j=-Dlog4j2.configurationFile=$conf/log4j2.properties
# The JVM flags of platform/service.mjs jvmFlags(), with the heap from .env,
# and each one's collector (COLLECTORS there).
flags=(-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "$log4j")
low_pause=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20)
throughput=(-XX:+UseParallelGC)

fill() {
  local text
  text=$(<"$1")
  for var in KAFKA_PORT CONNECT_GROUP_ID; do text=${text//"\${$var}"/${!var:-}}; done
  printf '%s\n' "$text" >"$2"
}

case "${1:-}" in
  kafka)
    : "${KAFKA_PORT:?}"
    fill "$conf/kafka.properties.in" /tmp/kafka.properties
    if [ ! -f /var/lib/kafka/data/meta.properties ]; then
      id=$(java -cp "$cp" "$log4j" kafka.tools.StorageTool random-uuid)
      java -cp "$cp" "$log4j" kafka.tools.StorageTool format -t "$id" -c /tmp/kafka.properties --ignore-formatted >/dev/null
      echo "jvm.sh: Kafka storage formatted (cluster $id)"
    fi
    # shellcheck disable=SC2086
    exec java ${KAFKA_HEAP:-} "${low_pause[@]}" "${flags[@]}" -cp "$cp" kafka.Kafka /tmp/kafka.properties
    ;;
  connect)
    : "${CONNECT_GROUP_ID:?}"
    fill "$conf/connect.properties.in" /tmp/connect.properties
    creds=/opt/kafka/credentials
    for name in pg-sink connect-admin; do
      [ -s "$creds/$name.password" ] || { echo "jvm.sh: $creds/$name.password is missing: the credentials service writes it (docker compose up)" >&2; exit 1; }
    done
    umask 077
    # What connector configs name as ${env:PG_SINK_PASSWORD}: the worker's own
    # environment, not the container's.
    PG_SINK_PASSWORD=$(<"$creds/pg-sink.password")
    export PG_SINK_PASSWORD
    # The REST API asks for basic auth (rest.extension.classes in the rendered
    # properties, as natively): one user, admin, as platform/connect.mjs makes
    # it. The users file is Java properties, so a backslash is doubled.
    rest_password=$(<"$creds/connect-admin.password")
    printf 'admin: %s\n' "${rest_password//\\/\\\\}" >/tmp/connect-rest-users.properties
    unset rest_password
    printf '%s\n' 'KafkaConnect {' \
      '  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required' \
      '  file="/tmp/connect-rest-users.properties";' '};' >/tmp/connect-rest.jaas
    # Converters and clients may not bring config providers of their own.
    # shellcheck disable=SC2086
    exec java ${CONNECT_HEAP:-} "${throughput[@]}" "${flags[@]}" -Dorg.apache.kafka.automatic.config.providers=none \
      -Djava.security.auth.login.config=/tmp/connect-rest.jaas \
      -cp "$cp" org.apache.kafka.connect.cli.ConnectDistributed /tmp/connect.properties
    ;;
  *)
    echo "usage: jvm.sh kafka|connect" >&2
    exit 2
    ;;
esac
