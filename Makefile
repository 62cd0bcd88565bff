# The two entry points: `make demo` (the main job) and `make test`. Each sets itself up
# idempotently: virtual environments with the package and its extras. `make dist` builds the
# wheel and sdist into dist/ (what a Raspberry Pi installs: see devices/raspberry-pi/README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# pip prints what it collects and downloads (a first install takes minutes: TensorFlow is ~600 MB)
PIP_FLAGS ?= --progress-bar on
# ../shared/data beside the repo when present (or $HAR_EDGE_DATA), else the real sample shipped here
DATA_ROOT ?= $(or $(HAR_EDGE_DATA),$(shell [ -d ../shared/data ] && echo ../shared/data || echo training/sample_data))
SAMPLE := training/sample_data
# the device path is tested twice more, without TensorFlow: LiteRT + numpy 2, and tflite-runtime 2.14 + numpy 1.26
DEVICE_TESTS := tests/runtime tests/integration/test_device_e2e.py tests/integration/test_fault_suite.py tests/inference/test_model_fuzz.py tests/cli/test_record.py tests/data/test_recordings.py
TFLITE_RUNTIME := tflite-runtime==2.14.0
DEVICE_VENV := $(VENV)-device
TFLITE_VENV := $(VENV)-tflite
# the suites run as sub-makes of this same file (so `make -f path/Makefile` works too)
SUBMAKE = $(MAKE) --no-print-directory -f $(abspath $(firstword $(MAKEFILE_LIST)))

.PHONY: demo test test-main test-device test-device-litert test-device-tflite-runtime bench dist clean

$(VENV)/.installed: pyproject.toml
	@echo "== setting up $(VENV) with $(PYTHON) ($$($(PYTHON) -V 2>&1)): TensorFlow, LiteRT, test tools; a first install takes a few minutes"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e ".[train,mcu,device,dev,demo,forecast]"
	touch $@

$(DEVICE_VENV)/.installed: pyproject.toml
	@echo "== setting up $(DEVICE_VENV): the device path without TensorFlow (LiteRT + numpy 2)"
	$(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEVICE_VENV)/bin/python -m pip install $(PIP_FLAGS) -e ".[device,i2c]" "pytest>=8" "hypothesis>=6.100"
	touch $@

# tflite-runtime 2.14 (its last release) has wheels for Python <= 3.11 only (Linux x86-64 / aarch64 / armv7l):
# elsewhere the stamp says "skip" and the leg prints why instead of failing after minutes of installing.
$(TFLITE_VENV)/.installed: pyproject.toml | $(VENV)/.installed
	@rm -f $@
	@if why=$$($(PY) -m pip download -q --no-deps --only-binary=:all: -d $(TFLITE_VENV).probe "$(TFLITE_RUNTIME)" 2>&1); then \
	  echo "== setting up $(TFLITE_VENV): the device path with $(TFLITE_RUNTIME) + numpy 1.26"; \
	  $(PYTHON) -m venv $(TFLITE_VENV) && \
	  $(TFLITE_VENV)/bin/python -m pip install -q --upgrade pip && \
	  $(TFLITE_VENV)/bin/python -m pip install $(PIP_FLAGS) "numpy<2" "$(TFLITE_RUNTIME)" "scipy>=1.10" "paho-mqtt>=2,<3" "smbus2>=0.4" "pytest>=8" "hypothesis>=6.100" && \
	  $(TFLITE_VENV)/bin/python -m pip install -q --no-deps -e . && echo ok > $@.tmp; \
	elif echo "$$why" | grep -q "No matching distribution"; then \
	  mkdir -p $(TFLITE_VENV) && echo "skip: pip finds no $(TFLITE_RUNTIME) wheel for $$($(PYTHON) -V 2>&1) on $$(uname -sm) (its wheels stop at Python 3.11, Linux only)" > $@.tmp; \
	else \
	  echo "cannot check for a $(TFLITE_RUNTIME) wheel: $$(echo "$$why" | tail -1)" >&2; \
	fi; rm -rf $(TFLITE_VENV).probe; test -f $@.tmp && mv $@.tmp $@

build/test-bundle/model.tflite: $(VENV)/.installed tests/fixtures/tiny.toml
	$(PY) -m har_edge train --config tests/fixtures/tiny.toml --out build/test-run --data-root $(SAMPLE) --quiet --seed 7
	$(PY) -m har_edge export build/test-run --quant float32 --out build/test-bundle --data-root $(SAMPLE) --no-interpreter-check

demo: $(VENV)/.installed
	$(PY) training/demo.py --data-root "$(DATA_ROOT)"

# every suite runs even when an earlier one fails; the exit code is a failure if any failed
test:
	@rc=0; \
	$(SUBMAKE) test-main || rc=1; \
	$(SUBMAKE) test-device || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED (see the suites above)"; else echo "make test: all suites passed"; fi; \
	exit $$rc

test-main: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) -m pytest -q -m "not slow"

test-device:
	@rc=0; \
	$(SUBMAKE) test-device-litert || rc=1; \
	$(SUBMAKE) test-device-tflite-runtime || rc=1; \
	exit $$rc

test-device-litert: build/test-bundle/model.tflite $(DEVICE_VENV)/.installed
	HAR_EDGE_DEVICE_ENV=1 HAR_EDGE_EXPECT_BACKEND=litert HAR_EDGE_TEST_BUNDLE=build/test-bundle $(DEVICE_VENV)/bin/python -m pytest -q -m "not tf and not slow" $(DEVICE_TESTS) -p no:cacheprovider

test-device-tflite-runtime: build/test-bundle/model.tflite $(TFLITE_VENV)/.installed
	@if grep -q '^skip' $(TFLITE_VENV)/.installed; then \
	  echo "== SKIPPED the tflite-runtime device suite: $$(sed 's/^skip: //' $(TFLITE_VENV)/.installed)"; \
	else \
	  HAR_EDGE_DEVICE_ENV=1 HAR_EDGE_TEST_BUNDLE=build/test-bundle HAR_EDGE_EXPECT_BACKEND=tflite-runtime $(TFLITE_VENV)/bin/python -m pytest -q -m "not tf and not slow" $(DEVICE_TESTS) -p no:cacheprovider; \
	fi

# every figure of the README, ~1 h on 2 cores; BENCH_ARGS="--reuse-runs" keeps trained runs, "--only STEP ..." runs some
bench: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) benchmarks/run_all.py $(BENCH_ARGS)

# wheel + sdist into dist/, built in a throw-away venv with PyPA's `build` (no TensorFlow needed)
dist:
	rm -rf build/venv-dist dist
	$(PYTHON) -m venv build/venv-dist
	build/venv-dist/bin/python -m pip install -q --upgrade pip
	build/venv-dist/bin/python -m pip install $(PIP_FLAGS) "build>=1.0"
	build/venv-dist/bin/python -m build --outdir dist .
	@ls -l dist

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(TFLITE_VENV) build dist
