# etude: `make reproduce` runs every study's quick preset, `make test` runs the test suite.
# Both create .venv on first use and install the package with its test extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/quick
SEED ?= 0

.PHONY: install test reproduce clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: install
	$(PY) -m pytest -q

reproduce: install
	$(VENV)/bin/etude reproduce --preset quick --seed $(SEED) --out $(RUN_DIR)
	$(VENV)/bin/etude report $(RUN_DIR)

clean:
	rm -rf $(VENV) runs .pytest_cache
