# The two entry points: `make demo` (the main job) and `make test`. Each sets itself up
# idempotently: a virtual environment in .venv with the package and its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# ../shared/data beside the repo when present (or $HAR_EDGE_DATA), else the real sample shipped here
DATA_ROOT ?= $(or $(HAR_EDGE_DATA),$(shell [ -d ../shared/data ] && echo ../shared/data || echo training/sample_data))

.PHONY: demo test test-all bench clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,device,dev,demo]"
	touch $@

demo: $(VENV)/.installed
	$(PY) training/demo.py --data-root "$(DATA_ROOT)"

test: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) -m pytest -q -m "not slow"

test-all: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) -m pytest -q

bench: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
