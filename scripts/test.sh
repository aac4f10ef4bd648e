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
# The OCSF Detection Finding model (py-ocsf-models, pinned) that `--alerts-format ocsf` is validated against.
VIGIL_OCSF_PYTHON="$(deploy/local/ocsf.sh install)"
export VIGIL_OCSF_PYTHON VIGIL_REQUIRE_OCSF=1
# pySigma and its SQLite backend (pinned): the independent evaluator vigil's Sigma rules are compared with.
VIGIL_SIGMA_PYTHON="$(deploy/local/sigma.sh install)"
export VIGIL_SIGMA_PYTHON VIGIL_REQUIRE_SIGMA=1
# rdkafka builds librdkafka against the system's OpenSSL and zlib.
if ! pkg-config --exists openssl zlib 2>/dev/null; then
  command -v apt-get >/dev/null || { echo "OpenSSL and zlib headers are needed (libssl-dev, zlib1g-dev, pkg-config)" >&2; exit 1; }
  apt-get install -y --no-install-recommends libssl-dev zlib1g-dev pkg-config >/dev/null
fi
# The Kafka-protocol broker the Kafka tests start (one per test): tansu, built once and cached.
deploy/local/kafka.sh install >/dev/null
export VIGIL_REQUIRE_KAFKA=1
# The S3-compatible server the S3 tests start (one per test): moto and the AWS CLI, pinned, in a venv.
deploy/local/s3.sh install >/dev/null
export VIGIL_REQUIRE_S3=1
# Headless Chromium, DejaVu fonts and pdftotext (Debian packages) render and print `vigil report`'s workpaper.
deploy/local/chromium.sh install >/dev/null
export VIGIL_REQUIRE_CHROMIUM=1

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

step "fuzz (short)"
# Every normalizer under libFuzzer for 20 s each (the corpus replay already ran in the tests above);
# the fuzz build is cached in the tools cache, so only a cold machine pays its build (about 10 minutes).
scripts/fuzz.sh --ci

step "rule packs"
# The binary the tests just built (cargo run -p would rebuild DataFusion with other feature flags).
target/debug/vigil rules test

step "container image"
# Builds the image from the Dockerfile offline with Debian's podman (the `local` stage, with the binary the
# tests built) and runs it: --version, validate, and the demo pipeline writing evidence to a host folder,
# verified from the host. 1-2 min on a new machine (apt-get, mmdebstrap), 9-13 s after that.
deploy/container/image.sh

step "deployment manifests"
# Every Kubernetes overlay rendered by kustomize and schema-checked offline; the systemd unit checked by
# systemd-analyze verify (skipped where systemd-analyze is missing).
deploy/kubernetes/validate.sh
deploy/systemd/verify.sh
