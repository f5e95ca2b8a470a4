# etude: `make reproduce` runs every study's quick preset (PRESET=long for the CPU scale that decides
# the claims; JOBS=N worker processes, default one per core), `make test` runs `make lint` (ruff's
# lint rules and formatter check, mypy; settings in pyproject.toml) and then the test suite.
# Both create .venv on first use and install the package with its test extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= quick
RUN_DIR ?= runs/$(PRESET)
SEED ?= 0
JOBS ?= auto
# pytest-xdist workers for `make test` (one per core, at most 4, each test file on one worker; TEST_WORKERS=0
# runs in this process). The 2-rank DDP launch is shared between workers (tests/ddp_support.py).
TEST_WORKERS ?= auto

.PHONY: install system-deps lint format test reproduce core-check clean

# Debian packages some features need (headless browser for the report test, fluidsynth and a
# General MIDI piano soundfont to render audio, the real Fashion-MNIST for etude.data). Installed when we
# are root with apt-get; otherwise the tests that need them are skipped with a message.
SYSTEM_PACKAGES ?= chromium chromium-driver fluidsynth timgm6mb-soundfont fluid-soundfont-gm dataset-fashion-mnist

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all,test]'
	touch $@

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing; the tests that need them will be skipped"; \
	  fi; \
	else echo "not root or no apt-get: not installing $(SYSTEM_PACKAGES); tests that need them are skipped"; fi

lint: install
	$(VENV)/bin/ruff check src
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy src/etude

# Rewrites src/ in place: ruff's autofixes (import order, pyupgrade), then the formatter.
format: install
	$(VENV)/bin/ruff check --fix src
	$(VENV)/bin/ruff format src

test: install system-deps lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

reproduce: install system-deps
	$(VENV)/bin/etude reproduce --preset $(PRESET) --seed $(SEED) --jobs $(JOBS) --out $(RUN_DIR)
	$(VENV)/bin/etude report $(RUN_DIR)

# `pip install etude` without extras: a fresh venv gets the core alone, which must import and run
# etude.similarity, etude.vi and etude.games (CI runs this after the tests; a few minutes).
CORE_VENV ?= /tmp/etude-core-venv
core-check:
	rm -rf $(CORE_VENV) && $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install --quiet torch==2.13.0
	$(CORE_VENV)/bin/pip install --quiet .
	cd /tmp && $(CORE_VENV)/bin/python -c "import sys, etude.similarity, etude.vi, etude.games; \
	  from etude.games import ipd, exact_values, policy_logits; \
	  assert abs(float(exact_values(ipd(0.96), policy_logits('tft'), policy_logits('defect'))[0]) + 2.04) < 1e-3; \
	  extra = [m for m in ('music21', 'mido', 'pyro', 'selenium') if m in sys.modules]; assert not extra, extra; \
	  print('core install ok')"

clean:
	rm -rf $(VENV) runs .pytest_cache
