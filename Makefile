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

$(VENV)/.installed: requirements.txt requirements-cpu.txt requirements-gpu.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif [ -n "$(HAS_GPU)" ]; then $(PY) -m pip install -q torch==$(TORCH_VERSION); \
	else $(PY) -m pip install -q --no-index --no-deps torch==$(TORCH_VERSION) 2>/dev/null \
	  || $(PY) -m pip install -q --no-deps torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX); fi
	@if [ -z "$(HAS_GPU)" ]; then $(PY) -m pip install -q -r requirements-cpu.txt; \
	else $(PY) -m pip install -q -r requirements-gpu.txt; fi
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@# per-clone git filters: chapter notebooks are committed without outputs (book/runs keeps them)
	-git config filter.nbstripout.clean "$(CURDIR)/$(VENV)/bin/nbstripout" && git config filter.nbstripout.smudge cat \
	  && git config filter.nbstripout.required true \
	  && git config diff.ipynb.textconv "$(CURDIR)/$(VENV)/bin/nbstripout -t"
	touch $@

venv: $(VENV)/.installed ## create .venv and install requirements.txt + seqlib (CPU torch unless a GPU is present)

test: venv chromium ## set up (if needed: .venv, Debian chromium) and run the test suite (CPU)
	$(PY) -m pytest $(PYTEST_ARGS)

test-gpu: venv ## run the GPU tests (pytest -m gpu) on a CUDA machine
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

bench: venv ## run the GPU benchmarks (scan, attention, models) into results/bench
	$(PY) -m seqlib bench scan
	$(PY) -m seqlib bench attention
	$(PY) -m seqlib bench models all

lint: venv ## ruff
	$(VENV)/bin/ruff check seqlib tests chapters

clean: ## remove build outputs (keeps .venv and book/runs)
	rm -rf _build .pytest_cache

# ---- the book (book/, chapters/, seqlib/book/grid.py) -----------------------------------------------
JB := $(VENV)/bin/jupyter-book
FORCE ?=
DEADLINE ?=
WORKERS_PER_GPU ?=
JUPYTERLAB_VERSION ?= 4.6.6
WHEELHOUSE ?= wheelhouse
WHEELHOUSE_PYTHON ?= 3.12
# what a GPU run imports beyond a stock PyTorch+Triton CUDA image (pins taken from requirements.txt);
# numpy comes with the image, scipy is only for the stats summaries (`python -m seqlib summary`, Results)
WHEELHOUSE_PKGS ?= pandas pydantic PyYAML tqdm altair papermill ipykernel dask distributed
WHEELHOUSE_IN_IMAGE ?= numpy filelock fsspec jinja2 markupsafe typing_extensions

book: venv ## write _toc.yml from params/grid.yaml, then build the site strictly into _build/html from the stored runs in book/runs (no re-execution)
	$(PY) -m seqlib.book.toc
	$(JB) build . --all -W -n --keep-going

run-all: venv ## train the grid's runs, then execute its chapters into book/runs; PROFILE=full|smoke|tiny, FORCE=1, DEADLINE=s, WORKERS_PER_GPU=n
	PROFILE=$(PROFILE) FORCE=$(FORCE) DEADLINE=$(DEADLINE) WORKERS_PER_GPU=$(WORKERS_PER_GPU) $(PY) -m seqlib.book.grid

lab: venv ## JupyterLab on chapters/ with the project's kernel (installs jupyterlab into .venv on first use)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q jupyterlab==$(JUPYTERLAB_VERSION)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=chapters

publish: book ## push _build/html to the gh-pages branch (ghp-import, with .nojekyll)
	$(VENV)/bin/ghp-import -n -p -f _build/html

wheelhouse: venv ## wheels for an offline GPU node (Python 3.12) into wheelhouse/ (~37 MB); ZOO=1 adds the fla zoo (+25 MB)
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	grep -iE '^($(subst $() ,|,$(strip $(WHEELHOUSE_PKGS))))==' requirements.txt > $(WHEELHOUSE)/requirements.txt
	$(if $(ZOO),grep -E '^[a-zA-Z]' requirements-gpu.txt >> $(WHEELHOUSE)/requirements.txt)
	$(PY) -m pip download -q -d $(WHEELHOUSE) --only-binary=:all: --implementation cp \
	  --python-version $(WHEELHOUSE_PYTHON) --abi cp$(subst .,,$(WHEELHOUSE_PYTHON)) \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -r $(WHEELHOUSE)/requirements.txt
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(WHEELHOUSE) .
	echo seqlib >> $(WHEELHOUSE)/requirements.txt
	cd $(WHEELHOUSE) && rm -f $(foreach p,$(WHEELHOUSE_IN_IMAGE),$(p)-*.whl)
	@echo "wheelhouse: $$(ls $(WHEELHOUSE)/*.whl | wc -l) wheels, $$(du -sh $(WHEELHOUSE) | cut -f1) (limit 60M);" \
	  "on the GPU node: pip install --no-index --find-links $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt"

.PHONY: chromium
chromium: ## Debian's chromium for the browser test (apt-get, as root, when missing)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
	  || { echo "chromium is missing: sudo apt-get install chromium (the browser test fails without it)"; }
