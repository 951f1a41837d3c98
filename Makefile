# framepack-lab: one setup path, a venv in .venv made with pip (torch installed first, pinned).
#
#   make lab      set up if needed, then open JupyterLab on notebooks/
#   make test     set up if needed, then run the whole test suite (notebook runs included)
#   make e2e      JupyterLab + headless Chromium run the quickstart and click Generate
#   make bench    the figures a user asks about (speed, per-section cost, memory), one table
#   make gpu-check  on a CUDA GPU: the CUDA tests, the tiny model's speed, HunyuanVideo in bf16, one table
#
# Variables (override on the command line, e.g. `make setup TORCH_SPEC=...`):
#   TORCH_SPEC   what `pip install` gets for torch, before anything else. Default: the CPU
#                build this project is tested with. For a CUDA build:
#                  make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#                To keep a torch you installed yourself into a new .venv before the first
#                `make setup`: make setup TORCH_SPEC=torch
#                .venv remembers the spec it was set up with; giving a different one later
#                uninstalls torch and installs the new spec.
#   PYTHON       interpreter used to create .venv (3.10+)
#   PRESET       notebook preset for `make notebooks` (smoke | full)
#   LAB_ARGS     extra arguments for `jupyter lab`, e.g. LAB_ARGS="--no-browser --ip 0.0.0.0"
#   CHECKPOINT   tiny checkpoint folder for `make figures` (default: the shipped one)
#   COMPARE      a second checkpoint `make figures` times against (the speed ratio; default: none)
#   PYTEST_ARGS  extra arguments for pytest, e.g. PYTEST_ARGS="-m 'not slow' -x"
#   TEST_WORKERS pytest-xdist workers for `make test` (default 2, each with cores/2 threads;
#                0 runs the suite in one process, as before)
#   E2E_ARGS     extra arguments for e2e/run_e2e.py, e.g. E2E_ARGS="--preset full --headed"
#   BENCH_ARGS   extra arguments for benchmarks/bench.py, e.g. BENCH_ARGS="--repeats 5"
#   CHROMIUM     browser for `make e2e` (default: Debian's /usr/bin/chromium, installed if missing)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
PRESET      ?= smoke
LAB_ARGS    ?=
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
E2E_ARGS    ?=
BENCH_ARGS  ?=
CHECKPOINT  ?=
COMPARE     ?=
CHROMIUM    ?= /usr/bin/chromium

KERNEL      := framepack-lab
# JupyterLab refuses to start as root (containers, CI images) unless told it is fine
ROOT_ARGS   := $(if $(filter 0,$(shell id -u)),--allow-root,)
BIN         := $(abspath $(VENV))/bin
PIP         := $(BIN)/python -m pip --disable-pip-version-check
STAMP       := $(VENV)/.installed
E2E_STAMP   := $(VENV)/.installed-e2e
TORCH_STAMP := $(VENV)/.torch-spec
KERNEL_JSON := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json
NOTEBOOKS   := $(sort $(wildcard notebooks/*.ipynb))

# .venv remembers the torch spec it was set up with: unless TORCH_SPEC is given (command line or
# environment), use that one, so `make test` after a CUDA setup does not put the CPU build back.
ifeq ($(filter command line environment,$(origin TORCH_SPEC)),)
  RECORDED_TORCH_SPEC := $(shell cat $(TORCH_STAMP) 2>/dev/null)
  ifneq ($(RECORDED_TORCH_SPEC),)
    TORCH_SPEC := $(RECORDED_TORCH_SPEC)
  endif
endif

# pip -q still prints one harmless "Location ... is ignored" warning per package on machines whose
# pip config lists local index folders; drop those lines, keep everything else (errors included)
# and pip's exit status.
QUIET_PIP   = 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }

.PHONY: help setup lab test e2e bench gpu-check notebooks table1 table2 forgetting figures strip clean distclean FORCE

help: ## list targets
	@echo "framepack-lab make targets:"
	@grep -E '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "variables: TORCH_SPEC='$(TORCH_SPEC)' PYTHON=$(PYTHON) PRESET=$(PRESET) (see top of Makefile)"

setup: $(STAMP) $(KERNEL_JSON) ## create .venv: TORCH_SPEC first, then -e .[dev], then the Jupyter kernel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Rewritten only when TORCH_SPEC differs from the last setup, so the install below reruns
# exactly when pyproject.toml or the torch spec changed.
$(TORCH_STAMP): FORCE | $(BIN)/python
	@if ! echo '$(TORCH_SPEC)' | cmp -s - $@; then \
	  if [ -f $@ ]; then \
	    echo "TORCH_SPEC changed ('$$(cat $@)' -> '$(TORCH_SPEC)'): reinstalling torch"; \
	    $(PIP) uninstall -q -y torch; \
	  fi; \
	  echo '$(TORCH_SPEC)' > $@; \
	fi

$(STAMP): pyproject.toml $(TORCH_STAMP)
	@echo "installing $(TORCH_SPEC) into $(VENV)"
	@set -o pipefail; $(PIP) install -q $(TORCH_SPEC) $(QUIET_PIP)
	@echo "installing framepack-lab (editable) with dev extras"
	@set -o pipefail; $(PIP) install -q -e '.[dev]' $(QUIET_PIP)
	@touch $@

$(KERNEL_JSON): $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
	  --display-name "Python (framepack-lab)" >/dev/null
	@echo "Jupyter kernel '$(KERNEL)' registered in $(VENV)"

lab: setup ## open JupyterLab on notebooks/ (kernel: Python (framepack-lab))
	HF_HUB_OFFLINE=1 $(BIN)/jupyter lab notebooks/ \
	  --MultiKernelManager.default_kernel_name=$(KERNEL) $(ROOT_ARGS) $(LAB_ARGS)

test: setup ## run the whole test suite, notebook runs included
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The browser test's extra: the `playwright` package only (kept out of `dev` so `make test` setup
# stays lean). Its own browser download (`playwright install`) does not work offline and is never
# run: e2e/run_e2e.py launches the system Chromium through executable_path.
$(E2E_STAMP): pyproject.toml $(STAMP)
	@echo "installing the e2e extra (playwright) into $(VENV)"
	@set -o pipefail; $(PIP) install -q -e '.[dev,e2e]' $(QUIET_PIP)
	@touch $@

# Debian's Chromium, installed only when missing (needs root, as on CI and the dev machines).
$(CHROMIUM):
	@echo "$(CHROMIUM) missing: installing Debian's chromium (apt-get)"
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e: run as root or install chromium yourself (apt-get install chromium), or pass CHROMIUM=/path/to/chromium" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
	@test -x $(CHROMIUM)

e2e: setup $(E2E_STAMP) $(CHROMIUM) ## browser test: JupyterLab + headless Chromium run the quickstart, change a widget, click Generate; screenshots in build/e2e/
	HF_HUB_OFFLINE=1 $(BIN)/python e2e/run_e2e.py --chromium $(CHROMIUM) $(E2E_ARGS)

bench: setup ## one table: 64-frame generation time, per-section cost packed vs unpacked, peak memory, import time, time to first frame
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

gpu-check: setup ## on a CUDA GPU: the CUDA tests of both backends, tiny-model speed, HunyuanVideo in bf16 -> build/gpu_check.json (exit 3: no GPU)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/gpu_check.py --out build/gpu_check.json

notebooks: setup ## papermill every notebook (PRESET=smoke by default) into build/executed/
	@mkdir -p build/executed
	@set -e; total=0; for nb in $(notdir $(NOTEBOOKS)); do \
	  echo "papermill notebooks/$$nb -> build/executed/$$nb (PRESET=$(PRESET))"; \
	  start=$$(date +%s); \
	  HF_HUB_OFFLINE=1 $(BIN)/papermill --cwd notebooks -k $(KERNEL) -p PRESET $(PRESET) \
	    notebooks/$$nb build/executed/$$nb; \
	  took=$$(( $$(date +%s) - start )); total=$$(( total + took )); \
	  echo "  $$nb: $$took s"; \
	done; echo "all notebooks (PRESET=$(PRESET)): $$total s"

table1: setup ## the toy Table 1: drift per sampling order x schedule x 16 held-out worlds -> build/table1.csv, .png (PRESET=smoke for a quick one; default full)
	HF_HUB_OFFLINE=1 $(BIN)/python -m framepack_lab.table1 --preset $(if $(filter command line,$(origin PRESET)),$(PRESET),full) --out build

table2: setup ## the toy Table 2: the paper's anti-drifting alternatives x 16 held-out worlds -> build/table2.csv, table2_raw.csv, .png (PRESET=smoke for a quick one; default full)
	HF_HUB_OFFLINE=1 $(BIN)/python -m framepack_lab.table2 --preset $(if $(filter command line,$(origin PRESET)),$(PRESET),full) --out build

forgetting: setup ## the forgetting probe: recall of a hidden sprite vs hidden frames, deep vs shallow packing -> build/forgetting.csv, .png (PRESET=smoke for a quick one; default full)
	HF_HUB_OFFLINE=1 $(BIN)/python -m framepack_lab.forgetting --preset $(if $(filter command line,$(origin PRESET)),$(PRESET),full) --out build

figures: setup ## every checkpoint-dependent figure of the README (evaluate at 64 and 256 frames, Table 2, +D, forgetting) in two 1-thread lanes -> build/figures/ (CHECKPOINT=dir to score another model, COMPARE=dir for the speed ratio, PRESET=smoke for a quick one; default full)
	PYTHON=$(BIN)/python bash benchmarks/figures.sh build/figures "$(CHECKPOINT)" $(if $(filter command line,$(origin PRESET)),$(PRESET),full) "$(COMPARE)"

strip: setup ## strip outputs and execution counts from notebooks/*.ipynb in place
	$(if $(NOTEBOOKS),$(BIN)/nbstripout --extra-keys "metadata.papermill cell.metadata.papermill" $(NOTEBOOKS),@echo "no notebooks to strip")

clean: ## remove build/ and caches (keeps .venv)
	rm -rf build .pytest_cache
	find . -path ./$(VENV) -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	  -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)

FORCE:
