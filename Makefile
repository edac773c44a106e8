# The plain entry point of edgeward. Two commands matter (see README.md):
#   make run    installs everything and serves the bundled example
#   make test   installs what the tests need and runs every check and test

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CARGO  ?= cargo
NATIVE := native/Cargo.toml

.PHONY: run install native system-deps lint test test-python test-rust bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "maturin>=1.7,<2"

# Release build of the Rust module, incremental in native/target.
native: $(BIN)/python
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --quiet --release -m $(NATIVE)

install: native
	$(BIN)/pip install --quiet -e '.[test]'

# The example upstream in the background, the edge in front of it (Ctrl-C stops both).
run: install
	$(BIN)/edgeward demo
	$(BIN)/edgeward check --config examples/edge.yml
	$(BIN)/python examples/upstream.py --port 9080 & up=$$!; \
	trap 'kill $$up 2>/dev/null' EXIT INT TERM; \
	$(BIN)/edgeward serve --config examples/edge.yml

# Programs the end-to-end tests drive (curl is assumed; h2load, nginx, wrk).
system-deps:
	@scripts/system-deps

lint: install
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench
	$(BIN)/mypy
	$(CARGO) fmt --manifest-path $(NATIVE) --all -- --check
	$(CARGO) clippy --manifest-path $(NATIVE) --workspace --all-targets --quiet -- -D warnings

test-rust:
	$(CARGO) test --manifest-path $(NATIVE) -p edgeward-core --quiet

test-python: install system-deps
	$(BIN)/pytest

test: lint test-rust test-python

bench: install system-deps
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) build native/target python/edgeward.egg-info
