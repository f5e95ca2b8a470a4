# etude: `make reproduce` runs every study's quick preset (PRESET=long for the CPU scale that decides
# the claims; JOBS=N worker processes, default one per core), `make test` runs the test suite.
# Both create .venv on first use and install the package with its test extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= quick
RUN_DIR ?= runs/$(PRESET)
SEED ?= 0
JOBS ?= auto

.PHONY: install system-deps test reproduce clean

# Debian packages some features need (headless browser for the report test, fluidsynth and a
# General MIDI piano soundfont to render audio). Installed when we
# are root with apt-get; otherwise the tests that need them are skipped with a message.
SYSTEM_PACKAGES ?= chromium chromium-driver fluidsynth timgm6mb-soundfont

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

test: install system-deps
	$(PY) -m pytest -q

reproduce: install system-deps
	$(VENV)/bin/etude reproduce --preset $(PRESET) --seed $(SEED) --jobs $(JOBS) --out $(RUN_DIR)
	$(VENV)/bin/etude report $(RUN_DIR)

clean:
	rm -rf $(VENV) runs .pytest_cache
