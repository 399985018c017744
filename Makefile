# `make demo` and `make test` each create (or reuse) .venv, install what they need, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of this version lies on the project's machines; elsewhere pip fetches it.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup bench-setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[test]'
	# an oracle of the attack tests; it declares torchvision, which would replace torch
	$(BIN)/python -m pip install -q --no-deps torchattacks==3.5.1
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/netscope demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: $(STAMP) lint
	./scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q

# The peers of bench/analyses.py (see bench/README.md): two of them with --no-deps, so that
# their torchvision requirement cannot replace torch.
bench-setup: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m pip install -q --no-deps torch-lucent==0.1.8

clean:
	rm -rf $(VENV) runs
