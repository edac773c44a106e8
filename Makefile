# The plain entry point of edgeward. Two commands matter (see README.md):
#   make run    installs everything and serves the bundled example
#   make test   installs what the tests need and runs every check and test

# The distribution's optimized CPython when it can make the venv (scripts/python).
PYTHON ?= $(shell scripts/python)
VENV   ?= .venv
BIN    := $(VENV)/bin
CARGO  ?= cargo
NATIVE := native/Cargo.toml

.PHONY: run agent-demo install native system-deps lint test test-python test-rust fuzz bench clean

# Stamps in the venv: a target is redone only when what it is built from
# changed (a second `make run` starts the edge at once). Python sources need
# no reinstall (editable install); the Cython modules (*.pyx) do.
NATIVE_SRC := $(shell find native/src native/core/src -name '*.rs') \
	$(wildcard native/python/edgeward_native/*.py native/python/edgeward_native/*.pyi) \
	native/Cargo.toml native/Cargo.lock native/core/Cargo.toml native/pyproject.toml
# The Cython modules and the pure-Python sources they `include`.
PYX_SRC := $(shell find python -name '*.pyx' -o -name '*.pxd')
PACKAGE_SRC := pyproject.toml setup.py $(PYX_SRC) \
	$(foreach f,$(PYX_SRC),$(addprefix $(dir $(f)),$(shell sed -n 's/^include "\(.*\)"/\1/p' $(f))))
NATIVE_STAMP  := $(VENV)/.edgeward-native
INSTALL_STAMP := $(VENV)/.edgeward-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "maturin>=1.7,<2"

# Release build of the Rust module, incremental in native/target.
$(NATIVE_STAMP): $(BIN)/python $(NATIVE_SRC)
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --quiet --release -m $(NATIVE)
	@touch $@

$(INSTALL_STAMP): $(NATIVE_STAMP) $(PACKAGE_SRC)
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

native: $(NATIVE_STAMP)
install: $(INSTALL_STAMP)

# The example upstream in the background, the edge in front of it (Ctrl-C stops both).
run: install
	$(BIN)/edgeward demo
	$(BIN)/edgeward check examples/edge.yml
	$(BIN)/python examples/upstream.py --port 9080 & up=$$!; \
	trap 'kill $$up 2>/dev/null' EXIT INT TERM; \
	$(BIN)/edgeward serve --config examples/edge.yml

# Expose a local app (README): the example upstream stands for the local app
# (port 9080); the edge of examples/agents/edge.yml takes agents on 4443.
agent-demo: install
	$(BIN)/python examples/agents/demo_certs.py
	$(BIN)/edgeward check --config examples/agents/edge.yml
	$(BIN)/python examples/upstream.py --port 9080 & up=$$!; \
	trap 'kill $$up 2>/dev/null' EXIT INT TERM; \
	$(BIN)/edgeward serve --config examples/agents/edge.yml

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

# The suite on the compiled modules, which must load (no Rust-backed test may
# skip its way to green), then the parts that run through `edgeward.native`
# or the HTTP/1.1 builds again on the pure-Python reference twins (tests/expr,
# tests/ipnet and tests/webhooks run both twins side by side already).
# Tests run on every core (pytest-xdist), a module's tests in one worker so
# its fixtures (edges, upstreams, providers) start once.
PYTHON_BACKEND_TESTS ?= tests/test_backends.py tests/http1 tests/policy tests/proxy tests/variables
PYTEST_PARALLEL ?= -n auto --dist loadscope
test-python: install system-deps
	EDGEWARD_BACKEND=rust $(BIN)/python scripts/backends --require-compiled
	EDGEWARD_BACKEND=rust $(BIN)/pytest $(PYTEST_PARALLEL)
	EDGEWARD_BACKEND=python $(BIN)/pytest -q $(PYTEST_PARALLEL) $(PYTHON_BACKEND_TESTS)

# A short cargo-fuzz run of every native entry point, FUZZ_SECONDS each: the
# CEL parser/checker/evaluator (`cel`), interpolation templates (`template`),
# IP/CIDR parsing and matching (`ipnet`), webhook verification (`webhooks`),
# whole-value operations on host-shaped values (`value`) and the HTTP/2
# server's receive path with HPACK (`h2`). Seeds come from
# native/fuzz/seed_corpus.py; cargo-fuzz needs nightly features, which
# RUSTC_BOOTSTRAP enables on the stable toolchain. Each target's totals are
# printed; its log is native/fuzz/artifacts/TARGET.log.
FUZZ_SECONDS ?= 10
FUZZ_TARGETS := cel template ipnet webhooks value h2
fuzz: $(BIN)/python
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked --quiet cargo-fuzz
	$(BIN)/python native/fuzz/seed_corpus.py native/fuzz/corpus
	@mkdir -p native/fuzz/artifacts
	cd native/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build --sanitizer none
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
		( cd native/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none $$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -print_final_stats=1 \
			> artifacts/$$t.log 2>&1 ) || { tail -n 60 native/fuzz/artifacts/$$t.log; exit 1; }; \
		grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss)" native/fuzz/artifacts/$$t.log \
			| sed "s/^/  $$t: /"; \
	done

test: lint test-rust test-python fuzz

bench: install system-deps
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) build native/target python/edgeward.egg-info
