# selfhost.mastodon: the commands a user and CI run. Every target sets up what it needs.
#   make test                        everything: set-up, lint, sanity, units, every scenario
#   make venv                        only .venv (the tools to deploy for real)
#   make demo / make demo-clean      the local demo (container + Cloudflare emulator)
#   make units | lint | sanity | integration | bench   one quality gate
#   make bench-flood [D=debian13]    relay flood benchmark (runs the flood scenario, prints figures)
#   make molecule                    every Molecule scenario
#   make scenario S=base_os [D=debian12]   one scenario on one distro
#   make images [REBUILD=1]          (re)build the local base images
#   make build                       the collection tarball (ansible-galaxy collection build)
SHELL := /bin/bash
RUN := tests/platform/run-tests.sh
D ?= debian13

.PHONY: test setup venv bench bench-flood units integration lint sanity molecule scenario images build demo demo-clean clean help

help:
	@grep '^#   make' Makefile | sed 's/^# //'

test:
	@$(RUN) all

venv:
	@$(RUN) venv

setup:
	@$(RUN) setup

bench:
	@$(RUN) bench

bench-flood:
	@$(RUN) venv >/dev/null && flock /tmp/selfhost-mol-flood.lock .venv/bin/python tests/benchmarks/bench_flood.py --distro $(D)

integration:
	@$(RUN) integration

units:
	@$(RUN) units

lint:
	@$(RUN) lint

sanity:
	@$(RUN) sanity

molecule:
	@$(RUN) molecule

scenario:
	@test -n "$(S)" || { echo "usage: make scenario S=<scenario> [D=debian13|debian12]"; exit 2; }
	@$(RUN) molecule $(S):$(D)

images:
	@$(RUN) setup >/dev/null && SELFHOST_REBUILD_IMAGES=$(REBUILD) bash tests/platform/build-images.sh

build:
	@$(RUN) setup >/dev/null && mkdir -p .build/dist && \
	  .venv/bin/ansible-galaxy collection build --force --output-path .build/dist .

demo:
	@$(RUN) setup && bash tests/platform/demo.sh up

demo-clean:
	@bash tests/platform/demo.sh down

clean:
	rm -rf .build tests/output
