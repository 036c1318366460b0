# Two commands do all the set-up on a fresh machine:
#   make demo   the main job on the embedded (offline) configuration: fetch -> dvc repro -> render
#   make test   the test suite (what CI runs, through .ci/run)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo paper repro data render render-if-quarto test test-fast lock clean-results help

help:
	@echo "make demo    offline configuration end to end (registry assets only): results/, report assets, paper"
	@echo "make paper   the paper configuration (GPT-Neo 125M + 1.3B on FineWeb; needs the HF hub or a warm cache)"
	@echo "make test    the test suite"
	@echo "make render  quarto render report/ (needs quarto >= 1.5 on PATH)"
	@echo "make verify  recompute everything in a scratch folder and compare with this checkout's outputs"

# Idempotent: re-runs only when the lock file or pyproject.toml changed.
setup: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

demo: setup
	$(BIN)/python -m analysis.config offline
	$(MAKE) --no-print-directory repro render-if-quarto

paper: setup
	$(BIN)/python -m analysis.config paper
	$(MAKE) --no-print-directory repro render-if-quarto

# Raw inputs: fetched from the registries / the hub (deterministic), then tracked by data.dvc.
data: setup
	$(BIN)/python -m analysis.corpus.fetch
	$(BIN)/dvc add -q data
	@git diff --quiet -- data.dvc 2>/dev/null || echo "note: data.dvc changed (new raw inputs): commit it to record this data version"

repro: data
	$(BIN)/dvc repro
	$(BIN)/dvc status

# The paper: a project render (re-reads the pre-render provenance), with Typst's own timestamp set from the
# checkout's commit date, so that two renders of one checkout give the same bytes. Fails without Quarto;
# `make demo` / `make paper` render only when Quarto is on PATH and say so when it is not.
QUARTO_HINT := Install Quarto >= 1.5 from https://quarto.org (no TeX needed), then run: make render
render:
	@command -v quarto >/dev/null 2>&1 || { echo "error: quarto not found on PATH. $(QUARTO_HINT)" >&2; exit 1; }
	SOURCE_DATE_EPOCH=$$($(PYTHON) analysis/provenance.py --epoch) quarto render report/

render-if-quarto:
	@if command -v quarto >/dev/null 2>&1; then $(MAKE) --no-print-directory render; \
	else echo "quarto not found on PATH: skipped rendering the paper. $(QUARTO_HINT)"; fi

test: setup
	$(BIN)/python -m pytest -q

lock:
	@# --all keeps setuptools (the editable install builds with it, --no-build-isolation); pip itself is left out
	@# the header comment of the current lock file is kept
	{ grep '^#' requirements.lock; $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(tokenlen|pip)==' | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# ---------------------------------------------------------------------------------------------------------
# Data versions (README: "For reviewers"). The default DVC remote `storage` (.dvc/config) is the folder
# ../tokenlen-dvc-storage next to this checkout. `make remote DVC_REMOTE=<path or URL>` repoints it for this
# clone only (.dvc/config.local, absolute path): do it once per clone, so that `dvc metrics diff` /
# `dvc plots diff` between tags also find the remote (DVC resolves a relative remote path wrongly for
# non-workspace revisions). `make release [VERSION=N] [REMOTE=name]` checks, pushes and tags data-<config>-vN.
.PHONY: release remote
DVC_REMOTE ?= $(abspath $(CURDIR)/../tokenlen-dvc-storage)
remote: setup
	$(BIN)/dvc remote modify --local storage url "$(DVC_REMOTE)"
	$(BIN)/dvc remote list

# Reproduction check: recompute every stage from data/raw in a scratch folder and compare each output with
# this checkout's (after `dvc pull` or `make demo`) within the tolerances of analysis/verify.py; exit 1 and
# the list of outputs that differ otherwise. VERIFY_ARGS="--from activations" skips the extraction.
.PHONY: verify
verify: setup
	$(BIN)/python -m analysis.verify $(VERIFY_ARGS)

release: setup
	$(BIN)/python -m analysis.release $(if $(VERSION),--version $(VERSION)) $(if $(REMOTE),--remote $(REMOTE))

# Benchmarks (not part of the tests): extraction and statistics at the GPT-Neo 125M / 1.3B shapes;
# writes bench/results.json and bench/RESULTS.md (under 20 minutes on a 2-core CPU; --quick for a smoke run).
.PHONY: bench
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Sample size (issue 11): the 125M shape's forward passes alone and with every block's sums accumulated as
# they run, at 8 192 / 65 536 / 262 144 tokens (SCALE_ARGS="--tokens ..." for others); bench/scale.json +
# bench/RESULTS-scale.md. Not under the regular bench's 20 minutes: each size runs three times in fresh
# processes (forward alone, + sums in memory, + sums spilled to files).
.PHONY: bench-scale
bench-scale: setup
	$(BIN)/python -m bench.scale $(SCALE_ARGS)
