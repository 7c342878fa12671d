# Stella Ops Appliance. Two set-up commands: `make run` and `make test` (see README.md).
# Both install what a fresh Debian 12 machine lacks, as root, only when it is missing.

SHELL := /bin/bash
CARGO ?= cargo
# Build: C parts (ring, zstd), libssl headers. Run: the GOST engine. Tests: the openssl, zstd and unshare
# CLIs, a real OCI registry (docker-registry) and skopeo to push test images into it.
APT_PACKAGES := build-essential pkg-config libssl-dev openssl libengine-gost-openssl ca-certificates zstd util-linux \
                docker-registry skopeo

.PHONY: deps test run bench fmt lint

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; install the Rust toolchain (rustup) first"; exit 2; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

test: deps
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

# The demo site lives in the embedded default data directory (/var/lib/stella, or $$STELLA_DATA).
run: deps
	$(CARGO) build --release --bins
	./target/release/stella selftest
	./target/release/stella demo

bench: deps
	$(CARGO) build --release --bins
	./target/release/stella-kit bench crypto

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
