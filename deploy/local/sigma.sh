#!/usr/bin/env bash
# Installs pySigma and its SQLite backend (pinned, from PyPI) into a private venv: the independent Sigma
# evaluator that vigil's Sigma conversion is compared with (scripts/sigma-oracle.py, tests/sigma.rs).
# google-re2 (SQLite's REGEXP in the oracle) comes with pySigma.
#   deploy/local/sigma.sh install     # idempotent; prints the venv's python
#   deploy/local/sigma.sh installed   # exit 0 when installed
#   deploy/local/sigma.sh python      # prints the python path if installed, exits 1 otherwise
# VIGIL_TOOLS sets where tools live (default ~/.cache/vigil-tools).
set -euo pipefail

PYSIGMA_VERSION="2.0.1"
SQLITE_BACKEND_VERSION="2.1.1"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
VENV="$TOOLS/pysigma-$PYSIGMA_VERSION-sqlite-$SQLITE_BACKEND_VERSION"
PY="$VENV/bin/python"

installed() {
  [ -x "$PY" ] && [ "$("$PY" -c 'from importlib.metadata import version as v; import re2, sigma.backends.sqlite; print(v("pysigma"), v("pysigma-backend-sqlite"))' 2>/dev/null)" = "$PYSIGMA_VERSION $SQLITE_BACKEND_VERSION" ]
}

case "${1:-install}" in
  install)
    if ! installed; then
      mkdir -p "$TOOLS"
      [ -x "$PY" ] || python3 -m venv "$VENV" || { echo "sigma.sh: 'python3 -m venv' failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
      "$PY" -m pip install --quiet --disable-pip-version-check "pysigma==$PYSIGMA_VERSION" "pysigma-backend-sqlite==$SQLITE_BACKEND_VERSION"
    fi
    installed || { echo "sigma.sh: pysigma $PYSIGMA_VERSION / pysigma-backend-sqlite $SQLITE_BACKEND_VERSION did not install" >&2; exit 1; }
    echo "$PY"
    ;;
  installed)
    installed
    ;;
  python)
    installed && echo "$PY"
    ;;
  *)
    echo "usage: $0 install|installed|python" >&2
    exit 2
    ;;
esac
