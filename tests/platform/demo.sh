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

make_keys() {
  mkdir -p "$state/keys"
  chmod 700 "$state/keys"
  [ -f "$state/keys/id_admin" ] || ssh-keygen -q -t ed25519 -N '' -C admin@selfhost-demo -f "$state/keys/id_admin"
}

start_network() {
  docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
}

start_emulator() {  # the same playbook as the site scenario's prepare; its state is kept
  ansible-playbook tests/cloudflare_emulator/container.yml \
    -e cloudflare_emulator_name="$emulator" -e cloudflare_emulator_network="$network" \
    -e cloudflare_emulator_dir="$state/emulator" -e cloudflare_emulator_image="$image" \
    -e cloudflare_emulator_api_port="$api_port" -e cloudflare_emulator_edge_port="$edge_port" \
    -e cloudflare_emulator_keep_state=true -e cloudflare_emulator_domain="$domain" \
    -e "cloudflare_emulator_label='demo: Cloudflare emulator (test stand-in)'"
  echo "$emulator: API http://127.0.0.1:$api_port/client/v4, edge https://127.0.0.1:$edge_port"
}

platform_args() {  # docker run flags for the platform of .config/molecule/config.yml, one a line
  python - "$root/.config/molecule/config.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    platform = yaml.safe_load(f)["platforms"][0]
args = ["--cgroupns", platform["cgroupns_mode"]]
# The volumes without environment references (the apt cache folder is the demo's own).
args += [a for v in platform["volumes"] if "$" not in v for a in ("-v", v)]
args += [a for t in platform["tmpfs"] for a in ("--tmpfs", t)]
args += [a for o in platform["security_opts"] for a in ("--security-opt", o)]
args += [a for c in platform["capabilities"] for a in ("--cap-add", c)]
print("\n".join(args))
PY
}

start_laptop() {
  if running "$laptop"; then echo "$laptop: already running"; return; fi
  docker rm -f "$laptop" >/dev/null 2>&1 || true
  mkdir -p "$apt_cache"
  # The platform every scenario uses (systemd as PID 1, no privileged), read from its one
  # definition in .config/molecule/config.yml.
  local args=()
  mapfile -t args < <(platform_args)
  [ ${#args[@]} -gt 0 ] || { echo "no platform settings in .config/molecule/config.yml" >&2; return 1; }
  docker run -d --name "$laptop" --hostname mastodon --network "$network" \
    --label selfhost.mastodon="demo: the laptop" \
    -v "$apt_cache:/var/cache/apt/archives:rw" \
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
  make_keys
  start_network
  start_emulator
  start_laptop
  say "Preparing the Mastodon TEST DOUBLE's local git repository in the laptop (tests/mastodon_double/prepare.yml)"
  ansible-playbook -i inventories/demo tests/mastodon_double/prepare.yml
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
