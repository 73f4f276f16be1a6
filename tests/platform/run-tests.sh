#!/usr/bin/env bash
# Stage functions are called indirectly, through run_stage and gate.
# shellcheck disable=SC2317
# The one test command (`make test` calls it): sets up everything a fresh Debian/Ubuntu machine
# lacks, then runs every quality gate and test. Stages can be run alone:
#
#   tests/platform/run-tests.sh all                 set-up, lint, sanity, units, molecule
#   tests/platform/run-tests.sh setup               venv, container engine, base images
#   tests/platform/run-tests.sh venv                only the venv (enough to deploy for real)
#   tests/platform/run-tests.sh lint | sanity | units | integration | bench
#   tests/platform/run-tests.sh molecule [SCENARIO[:DISTRO] ...]
#
# Prints how long each stage took, and ends with one line "total: N passed, N failed".
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
venv="$root/.venv"
build="$root/.build"
junit="$build/junit"
orig_path=$PATH
export PATH="$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$build/collections"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
export SELFHOST_APT_CACHE=${SELFHOST_APT_CACHE:-/var/cache/selfhost-mastodon/apt}

declare -a stage_lines=()
gate_passed=0
gate_failed=0
failed_names=()

say() { printf '\n==> %s\n' "$*"; }

run_stage() {  # run_stage NAME COMMAND...: times it, records a gate result
  local name=$1; shift
  local start rc
  start=$(date +%s)
  say "$name"
  "$@"; rc=$?
  local took=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    stage_lines+=("$(printf '%-34s %5ss  ok' "$name" "$took")")
  else
    stage_lines+=("$(printf '%-34s %5ss  FAILED (exit %s)' "$name" "$took" "$rc")")
    failed_names+=("$name")
  fi
  return "$rc"
}

# --- set-up -----------------------------------------------------------------------------------
setup_venv() {
  local want have py
  want=$(sha256sum requirements-dev.txt | cut -c1-16)
  have=$(cat "$venv/.requirements.sha" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -x "$venv/bin/ansible-playbook" ]; then
    echo "venv: $venv is up to date"
  else
    # The system's python3 (Debian 12: 3.11, Debian 13: 3.13, Ubuntu 24.04: 3.12), not the venv's.
    py=${SELFHOST_PYTHON:-$(PATH=$orig_path command -v python3 || true)}
    if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "venv: Python 3.11 or newer is needed as python3 (or set SELFHOST_PYTHON)" >&2; return 1
    fi
    if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "venv: installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      else
        echo "venv: $py cannot make virtual environments; install python3-venv" >&2; return 1
      fi
    fi
    echo "venv: creating $venv with $py ($("$py" --version)) and installing requirements-dev.txt"
    # In place: pip brings an existing venv to the pinned versions without removing it.
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q -r requirements-dev.txt || return 1
    echo "$want" >"$venv/.requirements.sha"
  fi
  # The collection as Ansible sees it: .build/collections/ansible_collections/selfhost/mastodon
  mkdir -p "$build/collections/ansible_collections/selfhost"
  ln -sfn ../../../.. "$build/collections/ansible_collections/selfhost/mastodon"
  local version; version=$(ansible --version 2>/dev/null); echo "venv: ${version%%$'\n'*}"
}

setup_engine() { bash tests/platform/ensure-engine.sh; }

setup_images() {
  local distros
  distros=$(scenario_matrix | awk -F: '{print $2}' | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086
  bash tests/platform/build-images.sh $distros
}

# --- quality gates ----------------------------------------------------------------------------
gate_lint() { ansible-lint --offline; }

collection_copy() {  # a copy under .../ansible_collections/selfhost/mastodon, as ansible-test needs
  local dest="$build/ansible-test/ansible_collections/selfhost/mastodon"
  rm -rf "$dest" && mkdir -p "$dest"
  git ls-files -co --exclude-standard | tar -C "$root" -cf - -T - | tar -C "$dest" -xf -
  # ansible-test lists a collection's files with git; the copy sits in the ignored .build/
  # folder of this repository, so it gets a repository of its own.
  (cd "$dest" && git init -q . && git add -A >/dev/null 2>&1)
  echo "$dest"
}

pyver() { python -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# ansible-test runs in a venv of its own: its sanity requirements (pylint, mypy, ...) are pinned
# by ansible-test and must not disturb the project venv. (`--venv` would fetch a pip bootstrap
# script from a host that is not always reachable, so this venv is made here with ensurepip.)
ansible_test_env() {
  local atv="$build/ansible-test-venv" want
  want=$( { grep '^ansible-core==' requirements-dev.txt; cat tests/unit/requirements.txt 2>/dev/null; } | sha256sum | cut -c1-16)
  if [ "$(cat "$atv/.sha" 2>/dev/null)" != "$want" ]; then
    rm -rf "$atv"
    "$venv/bin/python" -m venv "$atv" && "$atv/bin/pip" install -q --upgrade pip &&
      "$atv/bin/pip" install -q "$(grep '^ansible-core==' requirements-dev.txt)" || return 1
    [ -f tests/unit/requirements.txt ] && { "$atv/bin/pip" install -q -r tests/unit/requirements.txt || return 1; }
    echo "$want" >"$atv/.sha"
  fi
  # The venvs ansible-test makes for some sanity tests need its pip bootstrap script.
  local pipv cache
  pipv=$("$atv/bin/python" -c 'import re, ansible_test._internal.python_requirements as m, inspect; print(re.search(r"pip=.([0-9.]+)", inspect.getsource(m.get_venv_packages)).group(1))' 2>/dev/null)
  cache="$HOME/.ansible/test/cache/get_pip_${pipv//./_}.py"
  if [ -n "$pipv" ] && [ ! -f "$cache" ]; then
    mkdir -p "$(dirname "$cache")" && cp tests/platform/get_pip_ensurepip.py "$cache"
  fi
  echo "$atv"
}

gate_sanity() {
  local dest atv; dest=$(collection_copy); atv=$(ansible_test_env) || return 1
  (cd "$dest" && PATH="$atv/bin:$PATH" ansible-test sanity --local --requirements --python "$(pyver)" --color no)
}

gate_units() {
  local dest atv rc; dest=$(collection_copy); atv=$(ansible_test_env) || return 1
  (cd "$dest" && PATH="$atv/bin:$PATH" ansible-test units --local --requirements --python "$(pyver)" --color no)
  rc=$?
  mkdir -p "$junit"
  rm -f "$junit"/units*.xml
  for f in "$dest"/tests/output/junit/python*-units.xml; do  # modules, module_utils, controller
    [ -f "$f" ] || continue
    local kind; kind=$(basename "$f" -units.xml); kind=${kind#python*-}
    cp "$f" "$junit/units-$kind.xml"
  done
  return "$rc"
}

gate_integration() {  # packaging and other controller-side tests, in the project venv
  mkdir -p "$junit" "$build"
  local log="$build/bad-inputs.jsonl" rc
  rm -f "$log"
  # The module bad-input cases run here too (also in units), so that the figures cover both.
  SELFHOST_BAD_INPUTS_LOG=$log python -m pytest tests/integration \
    tests/unit/plugins/modules/test_bad_inputs.py -q -p no:cacheprovider \
    --junitxml="$junit/integration.xml" -o junit_suite_name=integration
  rc=$?
  [ -s "$log" ] && { python tests/bad_inputs/summary.py "$log" || rc=1; }
  return "$rc"
}

gate_bench() {  # prints request counts; fails when a request budget is exceeded
  python tests/benchmarks/bench_requests.py
}

# --- molecule ---------------------------------------------------------------------------------
# Each scenario says in its molecule.yml which distros it runs on and whether CI runs it:
#   # selfhost-distros: debian13 debian12
#   # selfhost-ci: false
scenario_matrix() {
  local f s distros seen_default=""
  for f in molecule/default/molecule.yml molecule/*/molecule.yml; do
    [ -f "$f" ] || continue
    case "$f" in molecule/default/*) [ -n "$seen_default" ] && continue; seen_default=1 ;; esac
    grep -q '^# selfhost-ci: false' "$f" && continue
    s=$(basename "$(dirname "$f")")
    distros=$(sed -n 's/^# selfhost-distros: *//p' "$f")
    # shellcheck disable=SC2086  # a list of words, split on purpose
    for d in ${distros:-debian13}; do echo "$s:$d"; done
  done
}

molecule_one() {  # molecule_one SCENARIO DISTRO
  local s=$1 d=$2
  SELFHOST_DISTRO=$d SELFHOST_IMAGE=${SELFHOST_IMAGE_OVERRIDE:-selfhost/$d-systemd:latest} \
  PYTEST_ADDOPTS="--junitxml=$junit/molecule-$s-$d.xml -o junit_suite_name=molecule-$s-$d" \
    molecule test -s "$s"
}

stage_molecule() {
  local items=("$@") item rc=0
  [ ${#items[@]} -gt 0 ] || mapfile -t items < <(scenario_matrix)
  mkdir -p "$junit"
  for item in "${items[@]}"; do
    local s=${item%%:*} d=${item#*:}
    [ "$d" = "$item" ] && d=debian13
    rm -f "$junit/molecule-$s-$d.xml"
    if run_stage "molecule $s ($d)" molecule_one "$s" "$d"; then gate_passed=$((gate_passed + 1));
    else gate_failed=$((gate_failed + 1)); rc=1; fi
  done
  return "$rc"
}

gate() {  # gate NAME FUNCTION: a quality gate counts as one test
  if run_stage "$1" "$2"; then gate_passed=$((gate_passed + 1)); else gate_failed=$((gate_failed + 1)); return 1; fi
}

summary() {
  say "Summary"
  printf '%s\n' "${stage_lines[@]}"
  python - "$junit" "$gate_passed" "$gate_failed" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
junit, gp, gf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
passed = failed = skipped = 0
for path in sorted(glob.glob(f"{junit}/*.xml")):
    root = ET.parse(path).getroot()
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        t, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed += t - f - e - s; failed += f + e; skipped += s
        label = path.rsplit("/", 1)[-1][:-4]
        print(f"  {label}: {t - f - e - s} passed, {f + e} failed, {s} skipped")
print(f"  quality gates and scenario runs: {gp} passed, {gf} failed")
line = f"total: {passed + gp} passed, {failed + gf} failed"
print(line + (f", {skipped} skipped" if skipped else ""))
PY
}

setup_all() {
  run_stage "setup: venv" setup_venv && run_stage "setup: engine" setup_engine &&
    run_stage "setup: images" setup_images
}

main() {
  local what=${1:-all}; shift || true
  local rc=0
  rm -rf "$junit"  # the summary speaks only of this run
  case "$what" in
    setup) setup_all; rc=$? ;;
    venv) run_stage "setup: venv" setup_venv; rc=$? ;;
    lint) run_stage "setup: venv" setup_venv && gate "ansible-lint (production)" gate_lint; rc=$? ;;
    sanity) run_stage "setup: venv" setup_venv && gate "ansible-test sanity" gate_sanity; rc=$? ;;
    units) run_stage "setup: venv" setup_venv && gate "ansible-test units" gate_units; rc=$? ;;
    bench) run_stage "setup: venv" setup_venv && gate "benchmark: API request counts" gate_bench; rc=$? ;;
    integration) run_stage "setup: venv" setup_venv && gate "pytest tests/integration" gate_integration; rc=$? ;;
    molecule)
      if ! setup_all; then summary; exit 1; fi
      stage_molecule "$@"; rc=$? ;;
    all)
      if ! setup_all; then gate_failed=$((gate_failed + 1)); summary; exit 1; fi
      gate "ansible-lint (production)" gate_lint || rc=1
      gate "ansible-test sanity" gate_sanity || rc=1
      gate "ansible-test units" gate_units || rc=1
      gate "pytest tests/integration" gate_integration || rc=1
      gate "benchmark: API request counts" gate_bench || rc=1
      stage_molecule || rc=1 ;;
    *) echo "usage: $0 all|setup|venv|lint|sanity|units|integration|bench|molecule [SCENARIO[:DISTRO] ...]" >&2; exit 2 ;;
  esac
  case "$what" in setup|venv) ;; *) summary ;; esac
  [ ${#failed_names[@]} -eq 0 ] || { echo "failed stages: ${failed_names[*]}"; rc=1; }
  exit $rc
}

main "$@"
