# seqbook: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# CPU-only machines get PyTorch's CPU wheel (a local wheelhouse first, then this index),
# never the several-GB CUDA build; a machine with `nvidia-smi` gets the default CUDA build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
PROFILE ?= $(if $(HAS_GPU),full,smoke)
PYTEST_ARGS ?=

.PHONY: help venv test test-gpu lint book run-all lab publish wheelhouse bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif [ -n "$(HAS_GPU)" ]; then $(PY) -m pip install -q torch==$(TORCH_VERSION); \
	else $(PY) -m pip install -q --no-index torch==$(TORCH_VERSION) 2>/dev/null \
	  || $(PY) -m pip install -q torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX); fi
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed ## create .venv and install requirements.txt + seqlib (CPU torch unless a GPU is present)

test: venv ## set up (if needed) and run the test suite (CPU)
	$(PY) -m pytest $(PYTEST_ARGS)

test-gpu: venv ## run the GPU tests (pytest -m gpu) on a CUDA machine
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

lint: venv ## ruff
	$(VENV)/bin/ruff check seqlib tests chapters

clean: ## remove build outputs (keeps .venv and book/runs)
	rm -rf _build .pytest_cache
