#!/usr/bin/env bash
# Build the local base images the Molecule scenarios run on: Debian with systemd as PID 1,
# made with debootstrap and `docker import`, because no container registry is reachable.
#
#   tests/platform/build-images.sh [debian13] [debian12]   build what is missing or outdated
#   SELFHOST_REBUILD_IMAGES=1 tests/platform/build-images.sh   build again from scratch
#
# An image is rebuilt only when its recipe (this file, the suite, the package list) changes:
# the recipe's hash is stored as the image label io.selfhost.recipe.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mirror=${SELFHOST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=python3,python3-apt,systemd,systemd-sysv,sudo,dbus,ca-certificates,iproute2,procps
distros=("$@")
[ ${#distros[@]} -gt 0 ] || distros=(debian13 debian12)

suite_of() {
  case "$1" in
    debian13) echo trixie ;;
    debian12) echo bookworm ;;
    *) echo "build-images: unknown distro '$1' (known: debian13 debian12)" >&2; exit 2 ;;
  esac
}

for distro in "${distros[@]}"; do
  suite=$(suite_of "$distro")
  image="selfhost/${distro}-systemd:latest"
  recipe=$( { cat "$here/build-images.sh"; echo "$suite $include $mirror"; } | sha256sum | cut -c1-16)
  have=$(docker image inspect --format '{{ index .Config.Labels "io.selfhost.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$have" = "$recipe" ] && [ -z "${SELFHOST_REBUILD_IMAGES:-}" ]; then
    echo "images: $image is up to date (recipe $recipe); reusing it"
    continue
  fi
  start=$(date +%s)
  root=$(mktemp -d /var/tmp/selfhost-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "images: building $image with debootstrap ($suite from $mirror)"
  debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    echo "images: debootstrap failed; last lines of $root.log:" >&2; tail -20 "$root.log" >&2; exit 1; }
  # Keep downloaded packages: the scenarios mount a shared apt cache at /var/cache/apt/archives.
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/10keep-debs"
  echo 'APT::Keep-Downloaded-Packages "true";' >>"$root/etc/apt/apt.conf.d/10keep-debs"
  # A stalled download should fail and be retried, not hang a scenario.
  printf 'Acquire::Retries "5";\nAcquire::http::Timeout "30";\n' >"$root/etc/apt/apt.conf.d/20retries"
  # Security updates too, as on a real host.
  if [ "$suite" = bookworm ] || [ "$suite" = trixie ]; then
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$mirror" "$suite" "$mirror" "$suite" "$suite" >"$root/etc/apt/sources.list"
  fi
  # A container has no consoles or hardware to wait for.
  for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
              systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  # No package lists in the image: make their age "never updated", so that apt's
  # cache_valid_time in a role fetches them on first use instead of trusting an empty cache.
  touch -d @0 "$root/var/lib/apt/lists"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
    -c "LABEL io.selfhost.recipe=$recipe" -c "LABEL io.selfhost.suite=$suite" \
    - "$image" >/dev/null
  rm -rf "$root" "$root.log"
  trap - EXIT
  echo "images: built $image in $(( $(date +%s) - start )) s"
done
