#!/usr/bin/env bash
# make core-range: the controller side at both ends of the supported ansible-core range.
#
#   oldest  ansible-core 2.19.0 (meta/runtime.yml's requires_ansible, every role's
#           min_ansible_version) on the project's Python (3.11)
#   newest  the newest ansible-core (or SELFHOST_CORE_NEWEST=2.21.5) on Python 3.13 or 3.12
#           (ansible-core 2.20 and later need 3.12+)
#
# For each: a venv of its own under .build/core-<end>/ (made here, kept while its pins do not
# change), then `ansible-playbook --syntax-check` of every playbook, the argument specs of every
# role (`ansible-doc -t role`), every plugin listed and documented (`ansible-doc -l`), and the
# unit tests (`ansible-test units`). The four collections the roles use come from the project
# venv's `ansible` package (made by `make venv`/`make setup`); the collection itself through
# .build/collections, as in every other run. Only the controller side: no host is touched.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
build="$root/.build"
oldest=$(sed -n 's/^requires_ansible: *">=\([0-9.]*\)".*/\1/p' meta/runtime.yml)
newest=${SELFHOST_CORE_NEWEST:-}

say() { printf '\n==> %s\n' "$*"; }

python_newest() {  # the first of python3.13, python3.12 that runs (pyenv's shims may refuse)
  local p
  for p in python3.13 python3.12 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
           "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    "$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { command -v "$p"; return 0; }
  done
  return 1
}

make_venv() {  # make_venv DIR PYTHON CORE-SPEC: a venv with that ansible-core and the unit tests' needs
  local dir=$1 python=$2 spec=$3 want
  want=$( { echo "$python $spec"; cat tests/unit/requirements.txt; } | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/.sha" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    "$python" -m venv "$dir" && "$dir/bin/pip" install -q --upgrade pip &&
      "$dir/bin/pip" install -q "$spec" -r tests/unit/requirements.txt || return 1
    echo "$want" >"$dir/.sha"
  fi
}

collections_of_the_project_venv() {  # site-packages of .venv, which holds ansible_collections/
  "$root/.venv/bin/python" -c 'import ansible_collections as a, os; print(os.path.dirname(list(a.__path__)[0]))'
}

check_one() {  # check_one NAME PYTHON CORE-SPEC
  local name=$1 python=$2 spec=$3 dir="$build/core-$1" failed=0 start=$SECONDS
  say "$name: $spec on $("$python" --version 2>&1)"
  make_venv "$dir" "$python" "$spec" || { echo "$name: could not make $dir"; return 1; }
  local extra; extra=$(collections_of_the_project_venv) || { echo "no .venv with the ansible package: run make venv"; return 1; }
  mkdir -p "$build/collections/ansible_collections/selfhost"
  ln -sfn ../../../.. "$build/collections/ansible_collections/selfhost/mastodon"
  export ANSIBLE_COLLECTIONS_PATH="$build/collections:$extra" ANSIBLE_NOCOLOR=1
  local version; version=$("$dir/bin/ansible" --version)
  echo "${version%%$'\n'*}"
  local pb
  for pb in playbooks/*.yml; do
    "$dir/bin/ansible-playbook" --syntax-check -i localhost, "$pb" >"$build/core-$name.log" 2>&1 ||
      { echo "FAILED syntax-check $pb:"; tail -20 "$build/core-$name.log"; failed=1; }
  done
  local playbooks=(playbooks/*.yml)
  echo "syntax-check: ${#playbooks[@]} playbooks"
  local roles role
  roles=$(ls roles)
  for role in $roles; do
    if ! "$dir/bin/ansible-doc" -t role -j "selfhost.mastodon.$role" >"$build/core-$name.json" 2>"$build/core-$name.log" ||
       ! "$dir/bin/python" - "$build/core-$name.json" "$role" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))["selfhost.mastodon." + sys.argv[2]]
points = doc["entry_points"]
assert "main" in points and points["main"].get("options"), sys.argv[2]
PY
    then
      echo "FAILED argument specs of $role"; cat "$build/core-$name.log"; failed=1
    fi
  done
  echo "argument specs: $(echo "$roles" | wc -w) roles"
  local kind out
  for kind in module filter test lookup; do
    out=$("$dir/bin/ansible-doc" -t "$kind" -l selfhost.mastodon 2>&1)
    if [ -z "$out" ] || grep -q 'UNDOCUMENTED\|ERROR' <<<"$out"; then
      echo "FAILED ansible-doc -t $kind -l:"; echo "$out"; failed=1
    fi
  done
  echo "plugins listed and documented: module, filter, test, lookup"
  # ansible-test wants the collection under ansible_collections/selfhost/mastodon, in git.
  local dest="$build/core-$name-tree/ansible_collections/selfhost/mastodon"
  rm -rf "$dest" && mkdir -p "$dest"
  git ls-files -co --exclude-standard | tar -C "$root" -cf - -T - | tar -C "$dest" -xf -
  (cd "$dest" && git init -q . && git add -A >/dev/null 2>&1)
  local pyv; pyv=$("$dir/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  (cd "$dest" && PATH="$dir/bin:$PATH" ANSIBLE_COLLECTIONS_PATH='' ansible-test units --local --requirements \
      --python "$pyv" --color no >"$build/core-$name-units.log" 2>&1) ||
    { echo "FAILED ansible-test units ($build/core-$name-units.log):"; tail -30 "$build/core-$name-units.log"; failed=1; }
  grep -E '^=+ .*(passed|failed).* in ' "$build/core-$name-units.log" | sed 's/^/units: /'
  echo "$name: $([ $failed = 0 ] && echo ok || echo FAILED) in $((SECONDS - start)) s"
  return $failed
}

rc=0
check_one oldest "$root/.venv/bin/python" "ansible-core==$oldest" || rc=1
if py=$(python_newest); then
  if [ -z "$newest" ]; then
    newest=$("$py" -m pip index versions ansible-core 2>/dev/null | sed -n 's/^ansible-core (\(.*\))$/\1/p')
  fi
  [ -n "$newest" ] || { echo "could not ask PyPI for the newest ansible-core"; exit 1; }
  check_one newest "$py" "ansible-core==$newest" || rc=1
else
  echo "no Python 3.12 or 3.13 here: the newest ansible-core cannot be checked"; rc=1
fi
exit $rc
