# One-command set-up and the README's two commands. All targets are idempotent: the venv in
# .venv is reused while pyproject.toml and constraints.txt are unchanged.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.nmprivacy-installed
# Lava supports only Python 3.10: PYTHON=... overrides; otherwise python3.10 on PATH, then pyenv.
PYTHON310 := $(shell PYTHON="$(PYTHON)" scripts/find-python310)
PYTEST_ARGS ?=
# test worker processes (pytest-xdist): one per usable CPU (affinity and cgroup quota, as the CLI
# counts them), at most 4 (each holds torch + Lava, up to ~1.7 GB; the tests run torch on one thread);
# expanded after `setup` built the venv; TEST_WORKERS=0 runs the suite in this process
TEST_WORKERS ?= $(shell $(VENV)/bin/python -c 'from nmprivacy.resources import usable_cpus; print(min(4, usable_cpus()[0]))')

.PHONY: setup test demo doctor bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: Python 3.10 not found (Lava supports only 3.10): install it (e.g. 'pyenv install 3.10') or run 'make PYTHON=/path/to/python3.10 ...'" >&2; exit 1; fi
	@if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then \
	  rm -rf $(VENV) && "$(PYTHON310)" -m venv $(VENV); fi
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=23"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	@touch $(STAMP)

test: setup
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/nmprivacy audit --out runs/demo

doctor: setup
	$(VENV)/bin/nmprivacy doctor

bench: setup
	$(VENV)/bin/nmprivacy bench attack-cost --quick --json runs/bench/attack-cost.json

clean:
	rm -rf $(VENV) runs .pytest_cache
