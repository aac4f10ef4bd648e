#!/usr/bin/env bash
# The one test command (README, CONTRIBUTING, .ci/run): installs what the tests need, then runs every
# check and test of the workspace. Safe to run again; installs are cached.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies"
command -v cc >/dev/null || { echo "a C compiler is needed (Debian: apt-get install build-essential)" >&2; exit 1; }
VIGIL_DUCKDB_PYTHON="$(deploy/local/duckdb.sh install)"
export VIGIL_DUCKDB_PYTHON VIGIL_REQUIRE_DUCKDB=1

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

step "rule packs"
# The binary the tests just built (cargo run -p would rebuild DataFusion with other feature flags).
target/debug/vigil rules test
