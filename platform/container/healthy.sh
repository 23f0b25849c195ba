#!/bin/bash
# The healthchecks of docker-compose.yml, one script in every image: podman's
# Docker API splits a healthcheck's arguments at spaces, so none of them may
# carry a shell line of its own.
#   healthy.sh http PORT PATH TEXT [USER PASSWORD_FILE]
#                                   an HTTP GET on 127.0.0.1 answers with TEXT in it;
#                                   with basic auth as USER when given (Connect's REST API)
#   healthy.sh kafka                the broker answers an ApiVersions request (an open
#                                   port says nothing: the kernel accepts before Kafka does)
#   healthy.sh fresh FILE SECONDS   FILE was written within SECONDS (a loop's heartbeat)
set -eu
case "${1:-}" in
  http)
    auth=""
    # The password goes from the file to base64 through builtins and a pipe:
    # never an argument, which `ps` would show.
    if [ $# -ge 6 ]; then auth="Authorization: Basic $(printf '%s:%s' "$5" "$(<"$6")" | base64 -w0)"$'\r\n'; fi
    exec 3<>"/dev/tcp/127.0.0.1/$2"
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n' "$3" "$auth" >&3
    timeout 4 cat <&3 | grep -q -- "$4"
    ;;
  kafka)
    exec 3<>/dev/tcp/127.0.0.1/29092
    # size 10 | api key 18 (ApiVersions) | version 0 | correlation id 1 | no client id
    printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff' >&3
    reply=$(timeout 3 head -c 8 <&3 | od -An -tx1 | tr -d ' \n')
    [ "${reply:8:8}" = "00000001" ]
    ;;
  fresh)
    [ -f "$2" ] && [ $(($(date +%s) - $(stat -c %Y "$2"))) -le "$3" ]
    ;;
  *)
    echo "usage: healthy.sh http PORT PATH TEXT [USER PASSWORD_FILE] | kafka | fresh FILE SECONDS" >&2
    exit 2
    ;;
esac
