# The two set-up commands of the README: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned, from the index pip is configured with (a local CPU wheel on the development machines; PyPI's
# Linux x86_64 wheel is the multi-GB CUDA build). TORCH_INDEX=https://download.pytorch.org/whl/cpu picks the CPU wheel
TORCH := torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test install install-dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	PATH=$(abspath $(BIN)):$$PATH snakemake --cores 2

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH=$(abspath $(BIN)):$$PATH snakemake --lint
	PATH=$(abspath $(BIN)):$$PATH python -m pytest -q -ra

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	PATH=$(abspath $(BIN)):$$PATH snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results .snakemake
