# The two entry points: `make demo` (the main job) and `make test`. Each sets itself up
# idempotently: virtual environments with the package and its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# ../shared/data beside the repo when present (or $HAR_EDGE_DATA), else the real sample shipped here
DATA_ROOT ?= $(or $(HAR_EDGE_DATA),$(shell [ -d ../shared/data ] && echo ../shared/data || echo training/sample_data))
SAMPLE := training/sample_data
# the device path is tested twice more, without TensorFlow: LiteRT + numpy 2, and tflite-runtime 2.14 + numpy 1.26
DEVICE_TESTS := tests/runtime tests/integration/test_device_e2e.py tests/integration/test_fault_suite.py tests/inference/test_model_fuzz.py tests/cli/test_record.py tests/data/test_recordings.py

.PHONY: demo test test-main test-device bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,device,dev,demo,forecast]"
	touch $@

.venv-device/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-device
	.venv-device/bin/python -m pip install -q --upgrade pip
	.venv-device/bin/python -m pip install -q -e ".[device,i2c]" "pytest>=8" "hypothesis>=6.100"
	touch $@

.venv-tflite/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-tflite
	.venv-tflite/bin/python -m pip install -q --upgrade pip
	.venv-tflite/bin/python -m pip install -q "numpy<2" "tflite-runtime==2.14.0" "scipy>=1.10" "paho-mqtt>=2,<3" "smbus2>=0.4" "pytest>=8" "hypothesis>=6.100"
	.venv-tflite/bin/python -m pip install -q --no-deps -e .
	touch $@

build/test-bundle/model.tflite: $(VENV)/.installed tests/fixtures/tiny.toml
	$(PY) -m har_edge train --config tests/fixtures/tiny.toml --out build/test-run --data-root $(SAMPLE) --quiet --seed 7
	$(PY) -m har_edge export build/test-run --quant float32 --out build/test-bundle --data-root $(SAMPLE) --no-interpreter-check

demo: $(VENV)/.installed
	$(PY) training/demo.py --data-root "$(DATA_ROOT)"

test: test-main test-device

test-main: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) -m pytest -q -m "not slow"

test-device: build/test-bundle/model.tflite .venv-device/.installed .venv-tflite/.installed
	HAR_EDGE_DEVICE_ENV=1 HAR_EDGE_EXPECT_BACKEND=litert HAR_EDGE_TEST_BUNDLE=build/test-bundle .venv-device/bin/python -m pytest -q -m "not tf and not slow" $(DEVICE_TESTS) -p no:cacheprovider
	HAR_EDGE_DEVICE_ENV=1 HAR_EDGE_TEST_BUNDLE=build/test-bundle HAR_EDGE_EXPECT_BACKEND=tflite-runtime .venv-tflite/bin/python -m pytest -q -m "not tf and not slow" $(DEVICE_TESTS) -p no:cacheprovider

# every figure of the README, ~1 h on 2 cores; BENCH_ARGS="--reuse-runs" keeps trained runs, "--only STEP ..." runs some
bench: $(VENV)/.installed
	HAR_EDGE_DATA="$(DATA_ROOT)" $(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-device .venv-tflite build
