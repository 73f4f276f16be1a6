#!/usr/bin/env bash
# Build the local base images the Molecule scenarios run on: Debian or Ubuntu with systemd as
# PID 1, made with debootstrap and `docker import`, because no container registry is reachable.
#
#   tests/platform/build-images.sh [debian13] [debian12] [ubuntu2404]   build what is missing or outdated
#   SELFHOST_REBUILD_IMAGES=1 tests/platform/build-images.sh   build again from scratch
#
# An image is rebuilt only when its recipe (this file, the suite, the package list) changes:
# the recipe's hash is stored as the image label io.selfhost.recipe.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
debian_mirror=${SELFHOST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ubuntu_mirror=${SELFHOST_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
include=python3,python3-apt,systemd,systemd-sysv,sudo,dbus,ca-certificates,iproute2,procps
distros=("$@")
[ ${#distros[@]} -gt 0 ] || distros=(debian13 debian12 ubuntu2404)

# Ubuntu's archive signing key ("Ubuntu Archive Automatic Signing Key (2018)
# <ftpmaster@ubuntu.com>"), the key that signs the Release files of every suite since 18.04.
# Debian 12 ships no Ubuntu keyring, so this fingerprint, written here, is the trust anchor.
ubuntu_archive_key=F6ECB3762474EDA9D21B7022871920D1991BC93C

suite_of() {
  case "$1" in
    debian13) echo trixie ;;
    debian12) echo bookworm ;;
    ubuntu2404) echo noble ;;
    *) echo "build-images: unknown distro '$1' (known: debian13 debian12 ubuntu2404)" >&2; exit 2 ;;
  esac
}

# How an Ubuntu suite is verified, built on a Debian host that has no Ubuntu keyring:
#  1. `debootstrap --download-only --no-check-gpg` only DOWNLOADS the packages (nothing from
#     them runs). debootstrap still checks each .deb's SHA256 against the Packages index and
#     that index against the Release file, but the Release file itself is unverified here.
#  2. The keyring is taken out of the downloaded ubuntu-keyring package (dpkg-deb -x, no
#     maintainer scripts) and used only if it holds the key whose fingerprint is pinned above.
#  3. The real run uses `--keyring` with that file: debootstrap checks the Release file's
#     signature with gpgv, then the Packages index and every package as usual, before any
#     package is unpacked or configured.
# Not verified: the pinned fingerprint itself (compare it with Ubuntu's published archive key
# if you change it), and the Release file's freshness beyond what gpgv checks (Valid-Until
# is not checked by debootstrap). Inside the image, apt verifies every later download with
# the keyring the image got from the verified ubuntu-keyring package.
ubuntu_keyring() {  # ubuntu_keyring SUITE WORKDIR: prints the path of a verified keyring
  local suite=$1 work=$2 deb ring fprs
  debootstrap --download-only --no-check-gpg --variant=minbase --components=main \
    --include=ubuntu-keyring --cache-dir="$work/cache" \
    "$suite" "$work/dl" "$ubuntu_mirror" /usr/share/debootstrap/scripts/gutsy >"$work/dl.log" 2>&1 || {
    echo "images: downloading $suite's packages failed; last lines:" >&2; tail -20 "$work/dl.log" >&2; return 1; }
  deb=$(find "$work/cache" "$work/dl/var/cache/apt/archives" -name 'ubuntu-keyring_*_all.deb' 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "images: no ubuntu-keyring package among $suite's downloads" >&2; return 1; }
  dpkg-deb -x "$deb" "$work/keyring"
  ring="$work/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg"
  [ -f "$ring" ] || { echo "images: $deb has no ubuntu-archive-keyring.gpg" >&2; return 1; }
  fprs=$(GNUPGHOME="$work/gnupg" gpg --batch --show-keys --with-colons "$ring" 2>/dev/null | awk -F: '$1 == "fpr" {print $10}')
  if ! grep -qx "$ubuntu_archive_key" <<<"$fprs"; then
    echo "images: $deb does not hold Ubuntu's archive key $ubuntu_archive_key; refusing it" >&2; return 1
  fi
  # Only the pinned key: a key added to a tampered keyring package would not be trusted.
  GNUPGHOME="$work/gnupg" gpg --batch --quiet --no-default-keyring --keyring "$ring" \
    --export "$ubuntu_archive_key" >"$work/ubuntu-archive-key.gpg"
  echo "$work/ubuntu-archive-key.gpg"
}

for distro in "${distros[@]}"; do
  suite=$(suite_of "$distro")
  image="selfhost/${distro}-systemd:latest"
  case "$distro" in ubuntu*) family=ubuntu mirror=$ubuntu_mirror ;; *) family=debian mirror=$debian_mirror ;; esac
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
  if [ "$family" = ubuntu ]; then
    work=$(mktemp -d /var/tmp/selfhost-ubuntu-keyring.XXXXXX)
    trap 'rm -rf "$root" "$work"' EXIT
    mkdir -p "$work/cache" "$work/gnupg"; chmod 700 "$work/gnupg"
    keyring=$(ubuntu_keyring "$suite" "$work") || exit 1
    echo "images: Ubuntu archive key $ubuntu_archive_key found in ubuntu-keyring; debootstrap checks the Release signature with it"
    debootstrap --variant=minbase --components=main,universe --keyring="$keyring" \
      --cache-dir="$work/cache" --include="$include,ubuntu-keyring" \
      "$suite" "$root" "$mirror" /usr/share/debootstrap/scripts/gutsy >"$root.log" 2>&1 || {
      echo "images: debootstrap failed; last lines of $root.log:" >&2; tail -20 "$root.log" >&2; exit 1; }
    grep -q 'Valid Release signature' "$root.log" || {
      echo "images: debootstrap did not report a valid Release signature; refusing the image" >&2; exit 1; }
  else
    debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
      echo "images: debootstrap failed; last lines of $root.log:" >&2; tail -20 "$root.log" >&2; exit 1; }
  fi
  # Keep downloaded packages: the scenarios mount a shared apt cache at /var/cache/apt/archives.
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/10keep-debs"
  echo 'APT::Keep-Downloaded-Packages "true";' >>"$root/etc/apt/apt.conf.d/10keep-debs"
  # A test container needs no fsync after every unpacked file (as in Docker's own Debian and
  # Ubuntu images): installing hundreds of small packages is several times faster.
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  # A stalled download should fail and be retried, not hang a scenario.
  printf 'Acquire::Retries "5";\nAcquire::http::Timeout "30";\n' >"$root/etc/apt/apt.conf.d/20retries"
  # Updates and security updates too, as on a real host.
  if [ "$family" = debian ]; then
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$mirror" "$suite" "$mirror" "$suite" "$suite" >"$root/etc/apt/sources.list"
  else
    # The components and pockets of an Ubuntu server install (nginx, redis and ffmpeg are in
    # universe), in the deb822 file Ubuntu 24.04 itself uses.
    : >"$root/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates %s-backports\nComponents: main restricted universe multiverse\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main restricted universe multiverse\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n' \
      "$mirror" "$suite" "$suite" "$suite" "${SELFHOST_UBUNTU_SECURITY_MIRROR:-http://security.ubuntu.com/ubuntu}" "$suite" \
      >"$root/etc/apt/sources.list.d/ubuntu.sources"
    # debootstrap takes the release pocket only, which for an LTS is frozen at its release:
    # bring the image up to -updates and -security once here, not in every scenario run.
    # apt checks the signatures with the keyring from the verified ubuntu-keyring package.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    trap 'umount "$root/proc" 2>/dev/null; rm -rf "$root" "$work"' EXIT
    if ! { chroot "$root" apt-get update -qq && DEBIAN_FRONTEND=noninteractive chroot "$root" \
           apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade; } >>"$root.log" 2>&1; then
      echo "images: upgrading $suite failed; last lines of $root.log:" >&2; tail -20 "$root.log" >&2; exit 1
    fi
    umount "$root/proc"
    rm -f "$root/usr/sbin/policy-rc.d"
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
  rm -rf "$root" "$root.log" "${work:-}"
  trap - EXIT
  echo "images: built $image in $(( $(date +%s) - start )) s"
done
