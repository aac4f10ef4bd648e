#!/usr/bin/env bash
# Installs DuckDB and pyarrow (pinned, from PyPI) into a private venv: the outside engine the tests use to
# prove that the evidence archive reads as one table with no vigil code, on a local disk (DuckDB's
# read_parquet) and on S3 (pyarrow's S3 filesystem feeding DuckDB, since DuckDB's httpfs extension is
# downloaded at run time from a host this project does not reach).
#   deploy/local/duckdb.sh install     # idempotent; prints the venv's python
#   deploy/local/duckdb.sh installed   # exit 0 when installed
#   deploy/local/duckdb.sh python      # prints the python path if installed, exits 1 otherwise
# VIGIL_TOOLS sets where tools live (default ~/.cache/vigil-tools).
set -euo pipefail

DUCKDB_VERSION="2.0.0"
PYARROW_VERSION="22.0.0"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
VENV="$TOOLS/duckdb-$DUCKDB_VERSION"
PY="$VENV/bin/python"

installed() {
  [ -x "$PY" ] && [ "$("$PY" -c 'import duckdb, pyarrow; print(duckdb.__version__, pyarrow.__version__)' 2>/dev/null)" = "$DUCKDB_VERSION $PYARROW_VERSION" ]
}

PACKAGES=("duckdb==$DUCKDB_VERSION" "pyarrow==$PYARROW_VERSION")

# shellcheck source=deploy/local/venv.sh
source "$(dirname "$0")/venv.sh"
venv_main "$@"
