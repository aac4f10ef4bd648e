# Shared by the scripts that install a pinned Python venv for tests (duckdb.sh, sigma.sh, ocsf.sh). Such a
# script sets VENV and PY, the pip requirements in PACKAGES, defines installed() (true when the pinned
# versions import), sources this file and calls `venv_main "$@"`:
#   install    create the venv and pip-install PACKAGES unless installed; print the venv's python
#   installed  exit 0 when the pinned versions are there
#   python     print the venv's python when installed
venv_main() {
  local name
  name="$(basename "$0")"
  case "${1:-install}" in
    install)
      if ! installed; then
        mkdir -p "$(dirname "$VENV")"
        [ -x "$PY" ] || python3 -m venv "$VENV" \
          || { echo "$name: 'python3 -m venv' failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
        "$PY" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"
      fi
      installed || { echo "$name: ${PACKAGES[*]} did not install" >&2; exit 1; }
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
}
