#!/usr/bin/env bash
# The local demo (make demo / make demo-clean):
#
#   tests/platform/demo.sh up     start the stand-ins, run playbooks/site.yml, print the URL
#   tests/platform/demo.sh down   remove the containers, the network and the demo's state
#
# `make demo` runs `tests/platform/run-tests.sh setup` first (venv, Docker engine, images).
# `make demo D=ubuntu2404` (or debian12) runs the laptop on that distribution's image
# (SELFHOST_DISTRO here); Debian 13 is the default. Run `make demo-clean` before switching.
# What is real and what is a stand-in:
#   real:      playbooks/site.yml and its four roles, systemd, nginx, PostgreSQL, Redis,
#              nftables, sshd, the cloudflared unit/token file the role writes, the
#              collection's Cloudflare modules talking HTTP to an API
#   stand-ins: the Cloudflare API and edge (tests/cloudflare_emulator, the project's
#              emulator), cloudflared (the connector stand-in cloudflared_standin.py), and
#              Mastodon (the TEST DOUBLE tests/mastodon_double, offline)
# Everything listens on 127.0.0.1 or inside the demo's own Docker network.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
state="$root/.build/demo"
network=selfhost-demo
laptop=selfhost-demo-laptop
emulator=selfhost-cf-emulator-demo
distro=${SELFHOST_DISTRO:-debian13}   # make demo D=ubuntu2404
image=${SELFHOST_IMAGE:-selfhost/$distro-systemd:latest}
api_port=${SELFHOST_DEMO_API_PORT:-18787}
edge_port=${SELFHOST_DEMO_EDGE_PORT:-18443}
domain=social.example.test
apt_cache=${SELFHOST_APT_CACHE:-/var/cache/selfhost-mastodon/apt}/$distro-demo

export SELFHOST_DEMO_API_PORT=$api_port
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections"
export ANSIBLE_ROLES_PATH="$root/roles"
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
export ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-True}  # fewer docker exec calls per task

say() { printf '\n==> %s\n' "$*"; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

make_keys_and_certs() {
  mkdir -p "$state/keys" "$state/emulator"
  chmod 700 "$state/keys"
  [ -f "$state/keys/id_admin" ] || ssh-keygen -q -t ed25519 -N '' -C admin@selfhost-demo -f "$state/keys/id_admin"
  local d="$state/emulator"
  if [ ! -f "$d/edge.pem" ]; then
    # A test CA for the emulated edge's HTTPS (a real visitor sees Cloudflare's certificate).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=Cloudflare emulator edge demo CA (not Cloudflare)" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/edge-ca.key" -out "$d/edge-ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=$domain" -keyout "$d/edge.key" -out "$d/edge.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,DNS:*.example.test\nextendedKeyUsage=serverAuth\n' "$domain" >"$d/edge.ext"
    openssl x509 -req -in "$d/edge.csr" -CA "$d/edge-ca.pem" -CAkey "$d/edge-ca.key" \
      -CAcreateserial -days 825 -extfile "$d/edge.ext" -out "$d/edge.pem" 2>/dev/null
    chmod 644 "$d/edge.key"  # read by the emulator container; a demo key of a stand-in
  fi
}

start_network() {
  docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
}

start_emulator() {
  if running "$emulator"; then echo "$emulator: already running"; return; fi
  docker rm -f "$emulator" >/dev/null 2>&1 || true
  docker run -d --name "$emulator" --network "$network" \
    --label selfhost.mastodon="demo: Cloudflare emulator (test stand-in)" \
    -p "127.0.0.1:$api_port:8787" -p "127.0.0.1:$edge_port:8443" \
    -v "$root/tests/cloudflare_emulator:/opt/cloudflare_emulator:ro" \
    -v "$state/emulator:/opt/demo:rw" \
    "$image" python3 /opt/cloudflare_emulator/emulator.py --host 0.0.0.0 \
      --api-port 8787 --edge-port 8443 --connector-port 7844 \
      --state-file /opt/demo/state.json \
      --edge-cert /opt/demo/edge.pem --edge-key /opt/demo/edge.key --verbose >/dev/null
  for _ in $(seq 1 30); do
    curl -fsS "http://127.0.0.1:$api_port/client/v4/__emulator__/state" >/dev/null 2>&1 && break
    sleep 1
  done
  echo "$emulator: API http://127.0.0.1:$api_port/client/v4, edge https://127.0.0.1:$edge_port"
}

start_laptop() {
  if running "$laptop"; then echo "$laptop: already running"; return; fi
  docker rm -f "$laptop" >/dev/null 2>&1 || true
  mkdir -p "$apt_cache"
  # The platform settings of .config/molecule/config.yml (systemd as PID 1, no privileged).
  local caps=(AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND CHOWN DAC_OVERRIDE
    DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE MAC_ADMIN
    MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW SETFCAP SETGID SETPCAP
    SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE
    SYS_RAWIO SYS_TIME SYS_TTY_CONFIG WAKE_ALARM)
  local args=()
  for c in "${caps[@]}"; do args+=(--cap-add "$c"); done
  docker run -d --name "$laptop" --hostname mastodon --network "$network" \
    --label selfhost.mastodon="demo: the laptop" \
    --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw -v "$apt_cache:/var/cache/apt/archives:rw" \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    "${args[@]}" "$image" /lib/systemd/systemd >/dev/null
  for _ in $(seq 1 30); do
    docker exec "$laptop" systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded' && break
    sleep 1
  done
  echo "$laptop: started from $image"
}

up() {
  local start=$SECONDS
  say "Stand-ins: Cloudflare emulator (not Cloudflare), connector stand-in (not cloudflared), Mastodon TEST DOUBLE (offline, not Mastodon)"
  make_keys_and_certs
  start_network
  start_emulator
  start_laptop
  say "Preparing the Mastodon TEST DOUBLE's local git repository in the laptop (molecule/mastodon_stack/prepare.yml)"
  MOLECULE_PROJECT_DIRECTORY="$root" ansible-playbook -i inventories/demo molecule/mastodon_stack/prepare.yml
  say "ansible-playbook -i inventories/demo playbooks/site.yml"
  local site_start=$SECONDS
  ansible-playbook -i inventories/demo playbooks/site.yml
  local took=$((SECONDS - site_start))
  say "Done in $((SECONDS - start)) s (site.yml: $took s)"
  local url="https://$domain:$edge_port/"
  local curl_cmd="curl --cacert .build/demo/emulator/edge-ca.pem --resolve $domain:$edge_port:127.0.0.1 $url"
  cat <<TEXT
The instance, through the emulated Cloudflare edge, the tunnel, the connector stand-in, nginx
(self-signed origin certificate, No TLS Verify as in the story) and the Mastodon TEST DOUBLE:

  public URL (emulated):  $url
  fetch it:               $curl_cmd
  or, without the CA:     curl -k --resolve $domain:$edge_port:127.0.0.1 ${url}health

Stand-ins in this demo: the Cloudflare API and edge are the project's emulator (container
$emulator, 127.0.0.1:$api_port and :$edge_port), cloudflared is the connector stand-in
(/usr/local/bin/cloudflared in $laptop), Mastodon is the offline TEST DOUBLE.
Run it again: it changes nothing. Remove it all: make demo-clean
TEXT
  say "$curl_cmd"
  (cd "$root" && $curl_cmd -sS --max-time 30) || { echo "the fetch through the tunnel failed" >&2; return 1; }
  echo
}

down() {
  say "Removing the demo: containers $laptop and $emulator, network $network, $state"
  docker rm -f "$laptop" "$emulator" >/dev/null 2>&1 || true
  docker network rm "$network" >/dev/null 2>&1 || true
  rm -rf "$state"
  echo "removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
