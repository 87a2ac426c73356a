# Set-up is implicit: every target builds the virtualenv (.venv) first if it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: train test lint data bench clean

train: $(INSTALLED) data  ## Train the RAM agent on GlimpseMNIST-v0 (the README's first command)
	$(PY) train_reinforce.py $(ARGS)

test: $(INSTALLED)  ## Lint, format check and the test suite (the README's second command; CI runs it)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

data: $(INSTALLED)  ## Prepare the MNIST cache from the offline sources (see ram_env/datasets.py)
	$(PY) -m ram_env.datasets fetch mnist

bench: $(INSTALLED)
	$(PY) benchmarks/bench_env.py

$(INSTALLED): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[sb3,fast,dev]"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info
