# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# `make install` is the shared, idempotent step: a second run does nothing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.prefkit-installed
EXTRAS := train,serve,scale,compare,dev

.PHONY: install demo test lint typecheck pytest system-deps clean bench

install: $(STAMP)

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build lies on disk; anything else would pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

# `make demo SERVE=1` then starts the annotation app on a simulated campaign (Ctrl-C stops it).
demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/prefkit demo demo-out
	@if [ -n "$(SERVE)" ]; then $(VENV)/bin/prefkit serve --demo --db sqlite:///demo-out/serve.db; fi

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy --strict src/

pytest: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadfile ; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests were collected"; exit 1; fi; exit $$rc

test: lint typecheck pytest

# Every benchmark at a small size (< 10 min on 2 idle cores): the shape of benchmarks/RESULTS.md.
# The list lives in benchmarks/run_all.py; logs and summary.json go to bench-out/.
bench: install
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.run_all --out bench-out

clean:
	rm -rf $(VENV) demo-out bench-out
