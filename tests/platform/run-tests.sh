#!/usr/bin/env bash
# Stage functions are called indirectly, through run_stage and gate.
# shellcheck disable=SC2317
# The one test command (`make test` calls it): sets up everything a fresh Debian/Ubuntu machine
# lacks, then runs every quality gate and test. Stages can be run alone:
#
#   tests/platform/run-tests.sh all                 set-up, lint, sanity, units, molecule (make test)
#   tests/platform/run-tests.sh all-matrix          the same with the whole matrix (make test-all)
#   tests/platform/run-tests.sh setup               venv with the test tools, container engine, base images
#   tests/platform/run-tests.sh venv                only the venv to deploy for real (requirements.txt)
#   tests/platform/run-tests.sh lint | sanity | units | controller | bench
#   tests/platform/run-tests.sh molecule [SCENARIO[:DISTRO] ...]
#
# Which scenario runs on which distribution: tests/platform/matrix.yml.
# SELFHOST_JOBS (default 2): how many scenario runs go on at the same time. Each run has its
# own container, network and Molecule folder (.build/molecule/<scenario>-<distro>); its output
# goes to .build/logs/molecule-<scenario>-<distro>.log and is printed when the run ends.
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
# setup_venv [REQUIREMENTS]: .venv with requirements-dev.txt (the test tools, the default) or
# requirements.txt (`make venv`: only what deploying needs; its pins are requirements-dev.txt's).
# Each file has its own stamp, so that `make venv` in a venv made by `make test` only checks it.
setup_venv() {
  local reqs=${1:-requirements-dev.txt} want have py stamp
  stamp="$venv/.requirements.sha"
  [ "$reqs" = requirements-dev.txt ] || stamp="$venv/.requirements-deploy.sha"
  want=$(sha256sum "$reqs" | cut -c1-16)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -x "$venv/bin/ansible-playbook" ]; then
    echo "venv: $venv is up to date ($reqs)"
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
    echo "venv: creating $venv with $py ($("$py" --version)) and installing $reqs"
    # In place: pip brings an existing venv to the pinned versions without removing it.
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q -r "$reqs" || return 1
    echo "$want" >"$stamp"
  fi
  # The collection as Ansible sees it: .build/collections/ansible_collections/selfhost/mastodon
  mkdir -p "$build/collections/ansible_collections/selfhost"
  ln -sfn ../../../.. "$build/collections/ansible_collections/selfhost/mastodon"
  local version; version=$(ansible --version 2>/dev/null); echo "venv: ${version%%$'\n'*}"
}

setup_engine() { bash tests/platform/ensure-engine.sh; }

setup_images() {  # setup_images [SCENARIO:DISTRO ...]: the images these runs need (default: make test's)
  local distros
  if [ $# -gt 0 ]; then distros=$(printf '%s\n' "$@" | awk -F: '{print (NF > 1 ? $2 : "debian13")}' | sort -u | tr '\n' ' ')
  else distros=$(scenario_matrix "${SELFHOST_MATRIX:-test}" | awk -F: '{print $2}' | sort -u | tr '\n' ' '); fi
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

gate_controller() {  # tests/controller: packaging and other controller-side tests, in the project venv
  mkdir -p "$junit" "$build"
  local log="$build/bad-inputs.jsonl" faults="$build/day2-faults.jsonl" rc
  rm -f "$log" "$faults"
  # The module bad-input cases run here too (also in units), so that the figures cover both.
  # The day-2 fault suite (tests/controller/test_ops_faults.py) records its figures too.
  SELFHOST_BAD_INPUTS_LOG=$log SELFHOST_FAULTS_LOG=$faults python -m pytest tests/controller \
    tests/unit/plugins/modules/test_bad_inputs.py -q -p no:cacheprovider \
    --junitxml="$junit/controller.xml" -o junit_suite_name=controller
  rc=$?
  [ -s "$log" ] && { python tests/bad_inputs/summary.py "$log" || rc=1; }
  [ -s "$faults" ] && { python tests/support/faults.py "$faults" || rc=1; }
  return "$rc"
}

gate_bench() {  # prints request counts; fails when a request budget is exceeded
  python tests/benchmarks/bench_requests.py
}

# --- molecule ---------------------------------------------------------------------------------
# scenario_matrix [test|all]: SCENARIO:DISTRO lines from tests/platform/matrix.yml, in its order
# (longest scenarios first there, so that parallel runs finish close together).
scenario_matrix() {
  python - "${1:-test}" <<'PY'
import sys
import yaml
with open("tests/platform/matrix.yml", encoding="utf-8") as f:
    matrix = yaml.safe_load(f)
for group in ["test"] + (["test-all"] if sys.argv[1] == "all" else []):
    for scenario, distros in (matrix.get(group) or {}).items():
        for distro in distros:
            print(f"{scenario}:{distro}")
PY
}

molecule_one() {  # molecule_one SCENARIO DISTRO
  local s=$1 d=$2
  # A user-path test that is not a Molecule scenario (tests/user_path/test_<name>.py: the
  # README's demo commands) runs in the same pool, with its own junit file.
  if [ ! -d "molecule/$s" ] && [ -f "tests/user_path/test_$s.py" ]; then
    SELFHOST_DISTRO=$d python -m pytest "tests/user_path/test_$s.py" -v -s -p no:cacheprovider \
      --junitxml="$junit/molecule-$s-$d.xml" -o junit_suite_name="user-path-$s-$d"
    return
  fi
  # Molecule's state for this scenario and distro (kept between runs, as Molecule's own cache
  # would be, so that a leftover container of an interrupted run is destroyed first).
  local eph="$build/molecule/$s-$d"
  mkdir -p "$eph"
  SELFHOST_DISTRO=$d SELFHOST_IMAGE=${SELFHOST_IMAGE_OVERRIDE:-selfhost/$d-systemd:latest} \
  MOLECULE_EPHEMERAL_DIRECTORY="$eph" \
  PYTEST_ADDOPTS="--junitxml=$junit/molecule-$s-$d.xml -o junit_suite_name=molecule-$s-$d" \
    molecule test -s "$s"
}

stage_molecule() {  # stage_molecule [SCENARIO[:DISTRO] ...]; SELFHOST_JOBS runs at a time
  local items=("$@") item jobs=${SELFHOST_JOBS:-2}
  [ ${#items[@]} -gt 0 ] || mapfile -t items < <(scenario_matrix "${SELFHOST_MATRIX:-test}")
  [ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
  mkdir -p "$junit" "$build/logs"
  local -A pid_of=() start_of=()
  local running=0 rc=0 start=$SECONDS live=false
  # One run at a time: its output is shown as it comes (and kept in the log too).
  { [ "$jobs" -eq 1 ] || [ ${#items[@]} -eq 1 ]; } && live=true
  finish_one() {  # wait for any run to end, print its log and record it
    local done_pid st key
    wait -n -p done_pid; st=$?
    for key in "${!pid_of[@]}"; do [ "${pid_of[$key]}" = "$done_pid" ] && break; done
    local took=$(( SECONDS - ${start_of[$key]} )) s=${key%%:*} d=${key#*:}
    if ! $live; then say "molecule $s ($d): output"; cat "$build/logs/molecule-$s-$d.log"; fi
    if [ "$st" -eq 0 ]; then
      stage_lines+=("$(printf '%-34s %5ss  ok' "molecule $s ($d)" "$took")"); gate_passed=$((gate_passed + 1))
    else
      stage_lines+=("$(printf '%-34s %5ss  FAILED (exit %s)' "molecule $s ($d)" "$took" "$st")")
      failed_names+=("molecule $s ($d)"); gate_failed=$((gate_failed + 1)); rc=1
    fi
    unset "pid_of[$key]"; running=$((running - 1))
  }
  for item in "${items[@]}"; do
    local s=${item%%:*} d=${item#*:}
    [ "$d" = "$item" ] && d=debian13
    while [ "$running" -ge "$jobs" ]; do finish_one; done
    rm -f "$junit/molecule-$s-$d.xml"
    say "molecule $s ($d): started (log .build/logs/molecule-$s-$d.log)"
    start_of["$s:$d"]=$SECONDS
    if $live; then
      ( molecule_one "$s" "$d" 2>&1 | tee "$build/logs/molecule-$s-$d.log"; exit "${PIPESTATUS[0]}" ) &
    else
      molecule_one "$s" "$d" >"$build/logs/molecule-$s-$d.log" 2>&1 &
    fi
    pid_of["$s:$d"]=$!; running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do finish_one; done
  [ ${#items[@]} -gt 1 ] && stage_lines+=("$(printf '%-34s %5ss  (%s runs, %s at a time)' \
    "molecule: wall time" "$((SECONDS - start))" "${#items[@]}" "$jobs")")
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
        for case in suite.iter("testcase"):  # name each failed test and its first message line
            for bad in list(case.findall("failure")) + list(case.findall("error")):
                msg = (bad.get("message") or bad.text or "").strip().splitlines()
                print(f"    FAILED {case.get('classname', '')}::{case.get('name', '')}: "
                      f"{msg[0][:200] if msg else ''}")
print(f"  quality gates and scenario runs: {gp} passed, {gf} failed")
line = f"total: {passed + gp} passed, {failed + gf} failed"
print(line + (f", {skipped} skipped" if skipped else ""))
PY
}

setup_all() {  # setup_all [SCENARIO:DISTRO ...]
  run_stage "setup: venv" setup_venv && run_stage "setup: engine" setup_engine &&
    run_stage "setup: images" setup_images "$@"
}

main() {
  local what=${1:-all}; shift || true
  local rc=0
  rm -rf "$junit"  # the summary speaks only of this run
  case "$what" in
    setup) setup_all; rc=$? ;;
    venv) run_stage "setup: venv (deploy)" setup_venv requirements.txt; rc=$? ;;
    lint) run_stage "setup: venv" setup_venv && gate "ansible-lint (production)" gate_lint; rc=$? ;;
    sanity) run_stage "setup: venv" setup_venv && gate "ansible-test sanity" gate_sanity; rc=$? ;;
    units) run_stage "setup: venv" setup_venv && gate "ansible-test units" gate_units; rc=$? ;;
    bench) run_stage "setup: venv" setup_venv && gate "benchmark: API request counts" gate_bench; rc=$? ;;
    controller|integration)  # "integration": the name before tests/integration became tests/controller
      run_stage "setup: venv" setup_venv && gate "pytest tests/controller" gate_controller; rc=$? ;;
    molecule)
      if ! setup_all "$@"; then summary; exit 1; fi
      stage_molecule "$@"; rc=$? ;;
    all|all-matrix)
      [ "$what" = all-matrix ] && export SELFHOST_MATRIX=all
      if ! setup_all; then gate_failed=$((gate_failed + 1)); summary; exit 1; fi
      gate "ansible-lint (production)" gate_lint || rc=1
      gate "ansible-test sanity" gate_sanity || rc=1
      gate "ansible-test units" gate_units || rc=1
      gate "pytest tests/controller" gate_controller || rc=1
      gate "benchmark: API request counts" gate_bench || rc=1
      stage_molecule || rc=1 ;;
    *) echo "usage: $0 all|all-matrix|setup|venv|lint|sanity|units|controller|bench|molecule [SCENARIO[:DISTRO] ...]" >&2; exit 2 ;;
  esac
  case "$what" in setup|venv) ;; *) summary ;; esac
  [ ${#failed_names[@]} -eq 0 ] || { echo "failed stages: ${failed_names[*]}"; rc=1; }
  exit $rc
}

main "$@"
