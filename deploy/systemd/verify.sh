#!/usr/bin/env bash
# Checks deploy/systemd/vigil.service with `systemd-analyze verify` (unknown keys, bad values, a missing
# ExecStart binary). The unit names /usr/local/bin/vigil, which a build machine does not have, so a copy
# in a temporary folder points at the binary cargo built (target/debug/vigil, or VIGIL_BIN).
# Skips, exit 0, with a message, where systemd-analyze is missing (no systemd on the machine).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
UNIT="$HERE/vigil.service"
BIN="${VIGIL_BIN:-$ROOT/target/debug/vigil}"

die() { echo "verify.sh: $*" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null; then
  echo "verify.sh: SKIPPED: systemd-analyze is not installed (Debian: apt-get install systemd)" >&2
  exit 0
fi
[ -x "$BIN" ] || die "no vigil binary at $BIN (cargo build -p vigil-cli, or set VIGIL_BIN)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/vigil#$BIN#g" "$UNIT" >"$work/vigil.service"
grep -q "^ExecStart=$BIN run " "$work/vigil.service" || die "ExecStart in $UNIT does not name /usr/local/bin/vigil"
# --man=no: the Documentation= URL is not looked up. Any output is a finding.
if ! out="$(cd "$work" && systemd-analyze verify --man=no "$work/vigil.service" 2>&1)" || [ -n "$out" ]; then
  echo "$out" >&2
  die "systemd-analyze verify found problems in deploy/systemd/vigil.service (above)"
fi
echo "verify.sh: deploy/systemd/vigil.service passes systemd-analyze verify ($(systemd-analyze --version | head -1))" >&2
