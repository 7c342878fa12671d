# Stella Ops Appliance. Two set-up commands: `make run` and `make test` (see README.md).
# Both install what a fresh Debian 12 machine lacks, as root, only when it is missing.

SHELL := /bin/bash
CARGO ?= cargo
# Build: C parts (ring, zstd), libssl headers. Run: the GOST engine. Tests also need the openssl, zstd and
# unshare CLIs, a real OCI registry (docker-registry) and skopeo to push test images into it, and headless
# Chromium with chromedriver for the console's browser tests; `make run` does not install those. The
# console benchmark needs wrk.
APT_PACKAGES := build-essential pkg-config libssl-dev openssl libengine-gost-openssl ca-certificates
TEST_PACKAGES := zstd util-linux docker-registry skopeo chromium chromium-driver
BENCH_PACKAGES := zstd wrk

.PHONY: deps test-deps bench-deps test run bench fmt lint

# Installs the Debian packages named in $(1) that are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; install the Rust toolchain (rustup) first"; exit 2; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))

bench-deps: deps
	$(call apt_install,$(BENCH_PACKAGES))

test: test-deps
	@# The SBOM schema tests validate with Python's jsonschema (no Rust validator to build).
	@python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install --quiet jsonschema
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# The end-to-end crate drives the real binaries: build them first.
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

# The demo site lives in the embedded default data directory (/var/lib/stella, or $$STELLA_DATA). The demo
# prints the console's admin secret; `stella serve` then serves the console until Ctrl-C.
LISTEN ?= 127.0.0.1:8080
run: deps
	$(CARGO) build --release --bins
	./target/release/stella selftest
	./target/release/stella demo
	@echo "make: console at http://$(LISTEN)/ (user admin, the one-time secret above)"
	./target/release/stella serve --listen $(LISTEN)

# Benchmarks print tables next to standard tools measured in the same run (docs/bench.md).
bench: bench-deps
	$(CARGO) build --release --bins
	./target/release/stella-kit bench crypto
	./target/release/stella-kit bench kit
	./target/release/stella bench import
	./target/release/stella bench feeds
	./target/release/stella bench scan
	./target/release/stella bench console

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Fuzzing: the cargo-fuzz targets in feeds/fuzz (one per parser of outside input). cargo-fuzz passes
# -Z flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no nightly is needed.
# A clean build of every target takes 8-13 minutes on 2 cores (own target dir, ~1.7 GB). `fuzz` seeds
# corpora from ../shared/corpus (gitignored), runs each target for FUZZ_SECONDS and fails if any of them
# crashed; crashing inputs land in feeds/fuzz/artifacts/TARGET/.
FUZZ_SECONDS ?= 60
FUZZ_DIR := feeds/fuzz
FUZZ := RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
FUZZ_FLAGS := -O -a --fuzz-dir $(FUZZ_DIR)

.PHONY: fuzz-build fuzz

fuzz-build:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	$(FUZZ) build $(FUZZ_FLAGS)

fuzz: fuzz-build
	$(FUZZ_DIR)/seed-corpus.sh
	@failed=""; for t in $$($(FUZZ) list --fuzz-dir $(FUZZ_DIR)); do \
	  echo "make: fuzzing $$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ) run $(FUZZ_FLAGS) $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=30 || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "make: crashes in:$$failed (inputs in $(FUZZ_DIR)/artifacts/)"; exit 1; fi
