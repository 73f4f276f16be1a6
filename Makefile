# selfhost.mastodon: the commands a user and CI run. Every target sets up what it needs.
#   make test                        everything: set-up, lint, sanity, units, the scenarios of
#                                    tests/platform/matrix.yml "test" (CI runs this)
#   make test-all                    the same with the whole matrix ("test" and "test-all")
#   make venv                        only .venv with requirements.txt (what deploying needs; no Docker)
#   make demo [D=ubuntu2404] / make demo-clean   the local demo (container + Cloudflare emulator)
#   make units | lint | sanity | controller | bench   one quality gate
#                                    (make integration: the old name of make controller)
#   make bench-converge              site.yml on the demo: first converge and no-op re-run timed
#   make bench-flood [D=debian13]    relay flood benchmark (runs the flood scenario, prints figures)
#   make bench-fetcher               a day of mastodon-fetcher (stand-ins) beside a relay (model)
#   make molecule                    every Molecule scenario
#   make scenario S=base_os [D=ubuntu2404]   one scenario on one distro (debian13 debian12 ubuntu2404)
#   make images [REBUILD=1]          (re)build the local base images (debian13 debian12 ubuntu2404)
#   make build                       the collection tarball (ansible-galaxy collection build; no Docker)
#   make core-range                  controller side (syntax, argument specs, plugin docs, units) on the
#                                    oldest supported ansible-core (2.19.0) and the newest (Python 3.12+)
SHELL := /bin/bash
RUN := tests/platform/run-tests.sh
D ?= debian13

.PHONY: test test-all setup venv bench bench-converge bench-flood bench-fetcher units controller integration lint sanity molecule scenario images build core-range demo demo-clean clean help

help:
	@grep '^#   make' Makefile | sed 's/^# //'

test:
	@$(RUN) all

test-all:
	@$(RUN) all-matrix

venv:
	@$(RUN) venv

setup:
	@$(RUN) setup

bench:
	@$(RUN) bench

bench-converge:
	@$(RUN) setup >/dev/null && .venv/bin/python tests/benchmarks/bench_converge.py

bench-fetcher:
	@$(RUN) venv >/dev/null && .venv/bin/python tests/benchmarks/bench_fetcher.py

bench-flood:
	@$(RUN) venv >/dev/null && flock /tmp/selfhost-mol-flood.lock .venv/bin/python tests/benchmarks/bench_flood.py --distro $(D)

controller:
	@$(RUN) controller

integration: controller

units:
	@$(RUN) units

lint:
	@$(RUN) lint

sanity:
	@$(RUN) sanity

molecule:
	@$(RUN) molecule

scenario:
	@test -n "$(S)" || { echo "usage: make scenario S=<scenario> [D=debian13|debian12|ubuntu2404]"; exit 2; }
	@$(RUN) molecule $(S):$(D)

images:
	@$(RUN) setup >/dev/null && SELFHOST_REBUILD_IMAGES=$(REBUILD) bash tests/platform/build-images.sh

build:
	@$(RUN) venv >/dev/null && mkdir -p .build/dist && \
	  .venv/bin/ansible-galaxy collection build --force --output-path .build/dist .

core-range:
	@$(RUN) venv >/dev/null && bash tests/platform/core-range.sh

demo:
	@$(RUN) setup && SELFHOST_DISTRO=$(D) bash tests/platform/demo.sh up

demo-clean:
	@bash tests/platform/demo.sh down

clean:
	rm -rf .build tests/output
