#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`.
# - An engine that already runs is never touched.
# - As root on Debian/Ubuntu with none: install the distribution's docker.io (plus debootstrap,
#   which the image builder needs, shellcheck for ansible-test sanity, sshpass and the ssh
#   client for the user-path scenario) and start dockerd
#   in the background.
# - Anything else: stop and say exactly what to install.
set -euo pipefail

log=${SELFHOST_DOCKERD_LOG:-/var/log/selfhost-dockerd.log}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)   # for ansible-test sanity
# sshpass: the user-path scenario logs in with a password on its first run (--ask-pass), as
# the README tells a user to; ssh-keyscan (openssh-client) records the laptop's host key.
command -v sshpass >/dev/null 2>&1 || need+=(sshpass)
command -v ssh-keyscan >/dev/null 2>&1 || need+=(openssh-client)
running=false
docker info >/dev/null 2>&1 && running=true

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<MSG
engine: missing ${need[*]}. This script installs them only as root on Debian or Ubuntu.
Install them yourself, for example:
    sudo apt-get install docker.io debootstrap shellcheck sshpass openssh-client && sudo systemctl start docker
(or Docker Engine from docs.docker.com), then run the command again.
MSG
    exit 2
  fi
  echo "engine: installing ${need[*]} from the distribution"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if $running; then
  echo "engine: a Docker engine is already running; leaving it alone"
  exit 0
fi

if ! docker info >/dev/null 2>&1; then
  # A service manager may start it (systemd on a normal host); otherwise start it ourselves.
  if [ -d /run/systemd/system ] && systemctl start docker >/dev/null 2>&1; then
    echo "engine: started docker.service"
  else
    echo "engine: starting dockerd in the background (log: $log)"
    nohup setsid dockerd >"$log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi

if ! docker info >/dev/null 2>&1; then
  echo "engine: dockerd did not come up within 60 s; see $log" >&2
  tail -20 "$log" >&2 || true
  exit 1
fi
echo "engine: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
