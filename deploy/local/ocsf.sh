#!/usr/bin/env bash
# Installs py-ocsf-models (pinned, from PyPI, with the pydantic it is built on) into a private venv: the
# OCSF Detection Finding model (OCSF 1.5.0) that the alert-format test validates vigil's `ocsf` alerts
# against, through scripts/ocsf-validate.py. No OCSF schema is written by hand in this repository.
#   deploy/local/ocsf.sh install     # idempotent; prints the venv's python
#   deploy/local/ocsf.sh installed   # exit 0 when installed
#   deploy/local/ocsf.sh python      # prints the python path if installed, exits 1 otherwise
# VIGIL_TOOLS sets where tools live (default ~/.cache/vigil-tools).
set -euo pipefail

OCSF_MODELS_VERSION="0.10.0"
PYDANTIC_VERSION="2.12.5"
EMAIL_VALIDATOR_VERSION="2.2.0"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
VENV="$TOOLS/ocsf-models-$OCSF_MODELS_VERSION"
PY="$VENV/bin/python"

installed() {
  [ -x "$PY" ] && [ "$("$PY" -c 'import importlib.metadata as m, pydantic; from py_ocsf_models.events.findings.detection_finding import DetectionFinding; print(m.version("py-ocsf-models"), pydantic.VERSION)' 2>/dev/null)" = "$OCSF_MODELS_VERSION $PYDANTIC_VERSION" ]
}

PACKAGES=("py-ocsf-models==$OCSF_MODELS_VERSION" "pydantic==$PYDANTIC_VERSION" "email-validator==$EMAIL_VALIDATOR_VERSION")

# shellcheck source=deploy/local/venv.sh
source "$(dirname "$0")/venv.sh"
venv_main "$@"
