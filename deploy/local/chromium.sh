#!/usr/bin/env bash
# Installs headless Chromium (Debian's package), DejaVu fonts and poppler-utils (pdftotext): the real browser
# the report test renders `vigil report`'s workpaper in (DOM, screenshot, PDF), and the PDF reader it checks
# the printed workpaper with.
#   deploy/local/chromium.sh install     # idempotent (apt-get only when something is missing); prints chromium's path
#   deploy/local/chromium.sh installed   # exit 0 when installed
#   deploy/local/chromium.sh path        # prints chromium's path if installed, exits 1 otherwise
# Debian's chromium follows the stable channel through bookworm-security: the package is pinned to the
# distribution, not to a version (older builds are withdrawn from the archive when a fix ships).
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core poppler-utils)

die() { echo "chromium.sh: $*" >&2; exit 1; }

installed() {
  command -v chromium >/dev/null && command -v pdftotext >/dev/null && [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
}

case "${1:-install}" in
  install)
    if ! installed; then
      command -v apt-get >/dev/null || die "needs ${PACKAGES[*]} (Debian packages); install them with your package manager"
      [ "$(id -u)" = 0 ] || die "installing ${PACKAGES[*]} needs root (apt-get); run: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}"
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
        apt-get update >/dev/null || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null \
          || die "apt-get install ${PACKAGES[*]} failed"
      fi
    fi
    installed || die "${PACKAGES[*]} did not install"
    command -v chromium
    ;;
  installed)
    installed
    ;;
  path)
    installed && command -v chromium
    ;;
  *)
    echo "usage: $0 install|installed|path" >&2
    exit 2
    ;;
esac
