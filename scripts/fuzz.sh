#!/usr/bin/env bash
# Coverage-guided fuzzing of every normalizer (cargo-fuzz, libFuzzer): fuzz/fuzz_targets/*.rs, one target per
# format plus the JSON scanner, seed corpus in fuzz/corpus/<target>/ (kept in the repo).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   # long run: every target, 600 s each by default, with AddressSanitizer
#   scripts/fuzz.sh --ci                   # short run for CI: every target 20 s, no sanitizer (see below)
#   scripts/fuzz.sh --target NAME [SECONDS]  # one target
#   scripts/fuzz.sh install                # install cargo-fuzz if not cached; prints its path
# A crash stops the run with a non-zero exit; libFuzzer writes the input to fuzz/artifacts/<target>/. Copy it
# to fuzz/corpus/<target>/ (a file named crash-<what>) once fixed: the corpus replay test
# (crates/vigil-normalize/tests/fuzz_corpus.rs) then runs it in every `cargo test`.
# New inputs that reach new code go to a scratch corpus (fuzz/corpus-new/<target>/, not in the repo), so a
# run leaves the repo's corpus as it is; `cargo fuzz cmin` can fold the interesting ones back in.
#
# The toolchain is stable Rust: cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses), which
# RUSTC_BOOTSTRAP=1 lets stable accept. The fuzz build has its own target dir, so its first build compiles
# arrow and the rest again with coverage instrumentation (and the sanitizer): about 10 minutes on 2 cores.
# --ci trims that: no sanitizer (`-s none`: a Rust panic, the only kind of bug found so far, is caught all the
# same; the crate forbids unsafe code), 16 codegen units instead of cargo-fuzz's 1, and a target dir kept in
# the tools cache ($VIGIL_TOOLS/fuzz-target), so only the first run on a machine builds from cold.
# Measured on 2 busy cores (load 3-4): --ci cold 833 s (build 630 s), warm 195 s (9 targets x 20 s).
# Environment: VIGIL_TOOLS (default ~/.cache/vigil-tools) is where cargo-fuzz (and the --ci build) is cached;
# VIGIL_FUZZ_SANITIZER (default address) is the sanitizer of the long run and of --target.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION="0.13.2"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
ROOT="$TOOLS/cargo-fuzz-$CARGO_FUZZ_VERSION"
BIN="$ROOT/bin/cargo-fuzz"
# Build flags of every cargo-fuzz call (the long run: fuzz/target, cargo-fuzz's defaults).
BUILD_FLAGS=(--fuzz-dir fuzz --release --debug-assertions)

die() { echo "fuzz.sh: $*" >&2; exit 1; }

install() {
  if [ ! -x "$BIN" ]; then
    command -v cargo >/dev/null || die "cargo is needed (install Rust with rustup)"
    mkdir -p "$ROOT"
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $ROOT (once)" >&2
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$ROOT" >&2 \
      || die "cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed (see above)"
  fi
  [ -x "$BIN" ] || die "cargo-fuzz did not install at $BIN"
}

targets() {
  local t
  for t in fuzz/fuzz_targets/*.rs; do basename "$t" .rs; done
}

# fuzz_one TARGET SECONDS SANITIZER
fuzz_one() {
  local target="$1" seconds="$2" sanitizer="$3" scratch="fuzz/corpus-new/$1"
  mkdir -p "$scratch"
  echo "==> fuzz $target for ${seconds}s (sanitizer: $sanitizer)" >&2
  # The first corpus directory receives new inputs: the scratch one, so the repo's seeds stay as they are.
  RUSTC_BOOTSTRAP=1 "$BIN" fuzz run "${BUILD_FLAGS[@]}" -s "$sanitizer" "$target" \
    "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
}

# build SANITIZER: every target at once, so the run of each does not pay for a build
build() {
  echo "==> build the fuzz targets (sanitizer: $1)" >&2
  RUSTC_BOOTSTRAP=1 "$BIN" fuzz build "${BUILD_FLAGS[@]}" -s "$1"
}

run_all() {
  local seconds="$1" sanitizer="$2" t start
  install
  start=$(date +%s)
  build "$sanitizer"
  echo "fuzz.sh: built in $(($(date +%s) - start)) s" >&2
  for t in $(targets); do
    fuzz_one "$t" "$seconds" "$sanitizer"
  done
  echo "fuzz.sh: every target ran ${seconds}s with no crash ($(($(date +%s) - start)) s in all)" >&2
}

case "${1:-}" in
  install)
    install
    echo "$BIN"
    ;;
  --ci)
    BUILD_FLAGS+=(--codegen-units 16 --target-dir "$TOOLS/fuzz-target")
    run_all "${2:-20}" none
    ;;
  --target)
    [ -n "${2:-}" ] || die "usage: $0 --target NAME [SECONDS]"
    install
    fuzz_one "$2" "${3:-600}" "${VIGIL_FUZZ_SANITIZER:-address}"
    ;;
  ""|[0-9]*)
    run_all "${1:-600}" "${VIGIL_FUZZ_SANITIZER:-address}"
    ;;
  *)
    echo "usage: $0 [SECONDS_PER_TARGET] | --ci [SECONDS_PER_TARGET] | --target NAME [SECONDS] | install" >&2
    exit 2
    ;;
esac
