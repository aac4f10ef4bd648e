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

PACKAGES=("pysigma==$PYSIGMA_VERSION" "pysigma-backend-sqlite==$SQLITE_BACKEND_VERSION")

# shellcheck source=deploy/local/venv.sh
source "$(dirname "$0")/venv.sh"
venv_main "$@"
