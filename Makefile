# ferry: developer and CI entry points (`make help`).
#
# Tools live in the repo, pinned: Python ones (sam, cargo-lambda, zig, cfn-lint) in .venv/
# from tests/tools/requirements.txt, Node ones (statelint, asl-validator) in
# tests/tools/node_modules/ from tests/tools/package-lock.json. `make tools` installs them;
# it is a no-op while the stamp files are newer than the manifests.
#
# One cargo target dir for everything (CARGO_TARGET_DIR, default target/): `cargo test`,
# `cargo clippy` and `cargo lambda build` (run by sam) all share it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

ROOT := $(CURDIR)
TOOLS_DIR := $(ROOT)/tests/tools
VENV := $(ROOT)/.venv
VENV_BIN := $(VENV)/bin
NODE_BIN := $(TOOLS_DIR)/node_modules/.bin
TIMED := $(TOOLS_DIR)/timed
PYTHON ?= python3

VENV_STAMP := $(VENV)/.ferry-tools.stamp
WORLD_PY := $(ROOT)/.venv-world/bin/python
NODE_STAMP := $(TOOLS_DIR)/node_modules/.ferry-tools.stamp

export CARGO_TARGET_DIR ?= $(ROOT)/target
export SAM_CLI_TELEMETRY := 0

# CI enforces an up-to-date Cargo.lock; locally cargo may update it.
LOCKED := $(if $(CI),--locked,)

# Lambda architecture for sam-build/demo: arm64 (the default in template.yaml) or x86_64.
# x86_64 needs template.yaml to take it as a parameter (Parameters: Architecture, used as
# Globals.Function.Architectures: [!Ref Architecture]); sam-build checks the result.
# arm64 needs the aarch64-unknown-linux-gnu std: sam-build adds it with rustup when it is
# missing (cargo-lambda would do the same), and zig (ziglang) is the cross linker.
# Note: `cargo lambda build --release` adds its own profile.release settings for every key
# Cargo.toml leaves unset (lto="thin", codegen-units=1, panic="abort") and always sets
# build.rustflags=-C target-cpu=neoverse-n1 (arm64) / haswell (x86_64).
ARCH ?= arm64
ifeq ($(ARCH),arm64)
CARGO_LAMBDA_ARCH := --arm64
RUST_TARGET := aarch64-unknown-linux-gnu
else ifeq ($(ARCH),x86_64)
CARGO_LAMBDA_ARCH :=
RUST_TARGET := x86_64-unknown-linux-gnu
else
$(error ARCH must be arm64 or x86_64, not "$(ARCH)")
endif
SAM_PARAMS := $(if $(shell grep -E '^  Architecture:' template.yaml 2>/dev/null),--parameter-overrides Architecture=$(ARCH),)
# sam's rust-cargolambda workflow runs `cargo lambda`, which must find cargo-lambda and
# zig (the ziglang package) on PATH.
SAM_ENV := PATH="$(VENV_BIN):$$PATH"

.PHONY: help tools fmt-check clippy unit lint-template lint-asl test sam-build demo clean distclean \
	bins local-up local-down world-tests rust-tests e2e bench

help:
	@echo "make tools          install the pinned tools into .venv/ and tests/tools/node_modules/"
	@echo "make test           tools, fmt-check, lint-template, lint-asl, clippy, world-tests, rust-tests"
	@echo "make rust-tests     start the world, run every Rust test (unit, SDK mocks, e2e), stop it"
	@echo "make fmt-check      cargo fmt --all --check"
	@echo "make clippy         cargo clippy --workspace --all-targets -- -D warnings"
	@echo "make unit           cargo test --workspace --exclude ferry-e2e (unit + SDK-mock tests)"
	@echo "make world-tests    pytest tests/world: the local AWS world's rules and engine"
	@echo "make e2e            start the world, run only the Rust end-to-end tests in it, stop it"
	@echo "make local-up       build the Lambdas, start the local AWS world, deploy ferry into it"
	@echo "make local-down     stop the world and every process it started"
	@echo "make lint-template  cfn-lint template.yaml target-account.yaml"
	@echo "make lint-asl       statelint + asl-validator on statemachines/*.asl.json"
	@echo "make sam-build      sam build (ARCH=arm64|x86_64, default arm64), print artifact sizes"
	@echo "make demo           migrate a realistic instance in the local AWS world (offline)"
	@echo "make bench          benchmarks -> bench/REPORT.md + bench/charts/ (not part of make test)"
	@echo "make clean          remove .aws-sam/   (distclean: also .venv/ and node_modules/)"

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
tools: $(VENV_STAMP) $(NODE_STAMP)

$(VENV_STAMP): tests/tools/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "tools: $(PYTHON) not found" >&2; exit 1; }
	test -x $(VENV_BIN)/python || $(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/python -m pip install --disable-pip-version-check --quiet --progress-bar off \
		-r tests/tools/requirements.txt
	touch $@

$(NODE_STAMP): tests/tools/package.json tests/tools/package-lock.json
	@command -v npm >/dev/null || { echo "tools: npm not found" >&2; exit 1; }
	cd $(TOOLS_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# ---------------------------------------------------------------------------------------
# Checks. `test` runs them one after the other, cheapest first, each timed. clippy (a
# check build: no codegen) goes before unit (a full debug build of the SDK). Nothing runs
# a separate `cargo build`: the tests build what they need, and a `cargo build` first
# would build the SDK a second time (the test-util feature changes the dependency graph).
# ---------------------------------------------------------------------------------------
test:
	@$(TIMED) tools $(MAKE) tools
	@$(TIMED) fmt-check $(MAKE) fmt-check
	@$(TIMED) lint-template $(MAKE) lint-template
	@$(TIMED) lint-asl $(MAKE) lint-asl
	@$(TIMED) clippy $(MAKE) clippy
	@$(TIMED) world-tests $(MAKE) world-tests
	@$(TIMED) rust-tests $(MAKE) rust-tests

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets $(LOCKED) -- -D warnings

unit:
	cargo test --workspace --exclude ferry-e2e $(LOCKED)

# The Lambda binaries the world runs ($(CARGO_TARGET_DIR)/debug/<name>; tests/world/up
# looks there too). Built by the test profile's
# feature set, so `make unit` before it leaves nothing to rebuild.
bins:
	cargo test --workspace $(LOCKED) --no-run

# The engine tests start worlds of their own that run the Lambda binaries.
world-tests: bins
	@test -x $(WORLD_PY) || tests/world/up --venv-only
	cd tests/world && $(WORLD_PY) -m pytest -q -p no:cacheprovider .

# Every Rust test in one cargo invocation (unit, SDK mocks, end-to-end), so the workspace
# is built once with one feature set: `-p ferry-e2e` alone would rebuild the SDK without
# the mocks' test-util feature. The world runs on FERRY_WORLD_PORT (default 4566) and is
# stopped even when the tests fail.
rust-tests: bins
	tests/world/up >/dev/null
	status=0; cargo test --workspace $(LOCKED) || status=$$?; \
		$(WORLD_PY) tests/world/iam_report.py >.local/iam-report.md \
			&& echo "least-privilege report (README \"IAM\"): .local/iam-report.md"; \
		tests/world/down; exit $$status

e2e: bins
	tests/world/up >/dev/null
	status=0; cargo test --workspace $(LOCKED) --test migrate_instance || status=$$?; \
		tests/world/down; exit $$status

local-up: bins
	tests/world/up

local-down:
	tests/world/down

lint-template: $(VENV_STAMP)
	@test -f template.yaml || { echo "lint-template: template.yaml is missing" >&2; exit 1; }
	$(VENV_BIN)/cfn-lint template.yaml target-account.yaml
	@echo "cfn-lint: template.yaml target-account.yaml ok"

lint-asl: $(VENV_STAMP) $(NODE_STAMP)
	$(VENV_BIN)/python tests/tools/validate-asl --self-test
	$(VENV_BIN)/python tests/tools/validate-asl

# ---------------------------------------------------------------------------------------
# Build and demo
# ---------------------------------------------------------------------------------------
# sam builds each function separately (one `cargo lambda build --release --bin NAME` per
# function, in source, into $(CARGO_TARGET_DIR)), which would run the fat-LTO link of each
# binary one at a time. One `cargo lambda build` of all binaries first, with exactly the
# flags sam passes, links them in parallel; sam's per-function builds then find everything
# fresh and only copy $(CARGO_TARGET_DIR)/lambda/NAME/bootstrap to .aws-sam/build/ID/.
sam-build: $(VENV_STAMP)
	@test -f template.yaml || { echo "sam-build: template.yaml is missing" >&2; exit 1; }
	@if [ "$(ARCH)" != arm64 ] && [ -z "$(SAM_PARAMS)" ]; then \
		echo "sam-build: ARCH=$(ARCH) needs an Architecture parameter in template.yaml" >&2; exit 1; fi
	@rustup target list --installed | grep -x $(RUST_TARGET) >/dev/null || rustup target add $(RUST_TARGET) || { \
		echo "sam-build: the Rust std for $(RUST_TARGET) is missing and cannot be installed;" \
		     "try: make sam-build ARCH=x86_64" >&2; exit 1; }
	$(SAM_ENV) cargo lambda build --release $(CARGO_LAMBDA_ARCH) $(LOCKED) -p ferry-steps
	$(SAM_ENV) $(VENV_BIN)/sam build --template-file template.yaml $(SAM_PARAMS)
	$(VENV_BIN)/python tests/tools/artifact-sizes --expect-arch $(ARCH) .aws-sam/build

# The main job, offline: a realistic source (encrypted root and data volume under a CMK,
# instance profile, IMDSv2, tags, Elastic IP) moved to another AZ by the real state
# machine on the real Lambdas; prints the new instance and the states' simulated times.
demo: bins
	tests/world/up >/dev/null
	status=0; $(WORLD_PY) tests/world/demo.py || status=$$?; tests/world/down; exit $$status

# Benchmarks (issue 10), not part of `make test`; writes bench/REPORT.md and bench/charts/.
#  3   zip sizes of every function as `make sam-build ARCH=$(ARCH)` builds them;
#  1-2 cold start and memory: release bootstraps of the host's architecture (BENCH_BINS,
#      the steps that have twins) through a local Lambda Runtime API stub with an HTTPS
#      endpoint, vs the Python 3 + boto3 twins in bench/twins/ (bench/coldstart/run.py).
#      With ARCH=x86_64 on an x86_64 host they are sam-build's own binaries (one release
#      build); with arm64 the host's are built too (a second release build);
#  4-6 transitions, detection latency, cost per run and the 100-instance fleet in a world
#      of its own on BENCH_PORT (bench/workflows.py).
# Cold, 60-120 minutes on 2 cores (the release builds; sam build relinks each function):
# a fresh clone took about 50 minutes to the zip sizes alone, sharing the cores.
BENCH_VENV := $(ROOT)/.venv-bench
BENCH_STAMP := $(BENCH_VENV)/.ferry-bench.stamp
BENCH_BINS ?= wait-image resolve-image image-event
BENCH_PORT ?= 4595
BENCH_WORLD := FERRY_WORLD_PORT=$(BENCH_PORT) FERRY_WORLD_STATE_DIR=$(ROOT)/.local/bench-world
HOST_ARCH := $(subst aarch64,arm64,$(shell uname -m))

$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/requirements.txt
	touch $@

bench: $(VENV_STAMP) $(BENCH_STAMP) bins
	$(MAKE) sam-build ARCH=$(ARCH)
	$(VENV_BIN)/python tests/tools/artifact-sizes --json bench/results/sizes.json .aws-sam/build >/dev/null
	@if [ "$(ARCH)" != "$(HOST_ARCH)" ]; then \
		echo "bench: cold starts need $(HOST_ARCH) binaries: building $(BENCH_BINS)"; \
		$(SAM_ENV) cargo lambda build --release $(LOCKED) -p ferry-steps $(addprefix --bin ,$(BENCH_BINS)); fi
	env -u PYTHONDONTWRITEBYTECODE $(BENCH_VENV)/bin/python bench/coldstart/run.py \
		--bootstraps $(CARGO_TARGET_DIR)/lambda --out bench/results/coldstart.json
	$(BENCH_WORLD) tests/world/up >/dev/null
	status=0; $(WORLD_PY) bench/workflows.py --world-json $(ROOT)/.local/bench-world/world.json \
		--out bench/results/workflows.json || status=$$?; $(BENCH_WORLD) tests/world/down; \
		test $$status = 0
	$(BENCH_VENV)/bin/python bench/report.py

clean:
	rm -rf .aws-sam

distclean: clean
	rm -rf $(VENV) $(BENCH_VENV) $(TOOLS_DIR)/node_modules
