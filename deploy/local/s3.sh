#!/usr/bin/env bash
# A real S3-compatible server on loopback for tests and trials: moto's server (PyPI, pinned) in a private venv,
# with a bucket that has Object Lock enabled (vigil applies the retention itself), and the AWS CLI (pinned) as
# the ordinary S3 client for trials and tamper tests.
#   deploy/local/s3.sh install       # create the venv if not cached (moto[server] + awscli); prints its path
#   deploy/local/s3.sh installed     # exit 0 when the venv is ready
#   deploy/local/s3.sh start         # install, start on 127.0.0.1:PORT, create the bucket, print the endpoint
#   deploy/local/s3.sh stop          # stop the server this script started (by its PID); moto keeps no data
#   deploy/local/s3.sh endpoint      # print the endpoint of the running server
#   deploy/local/s3.sh env           # print `export ...` lines: endpoint, region, test credentials
#   deploy/local/s3.sh bucket NAME [--no-lock]   # create another bucket (Object Lock on unless --no-lock)
#   deploy/local/s3.sh aws ARGS...   # the AWS CLI pointed at the server, e.g. `aws s3 ls s3://vigil-evidence/`
# Environment: VIGIL_TOOLS (default ~/.cache/vigil-tools) is where the venv is cached; VIGIL_S3_DIR (default
# $VIGIL_TOOLS/s3-run) holds the pid, port and log; VIGIL_S3_PORT picks the port (default: a free one);
# VIGIL_S3_BUCKET names the bucket created at start (default vigil-evidence).
set -euo pipefail

MOTO_VERSION="5.2.5"
AWSCLI_VERSION="1.46.2"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
VENV="$TOOLS/moto-$MOTO_VERSION-awscli-$AWSCLI_VERSION"
RUN="${VIGIL_S3_DIR:-$TOOLS/s3-run}"
BUCKET="${VIGIL_S3_BUCKET:-vigil-evidence}"
# moto accepts any credentials; these are the test ones every local trial uses.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-vigil-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-vigil-local-secret}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

die() { echo "s3.sh: $*" >&2; exit 1; }
# running, free_port, stop
# shellcheck source=process.sh
. "$(dirname "$0")/process.sh"

installed() { "$VENV/bin/python" -c 'import moto, flask, awscli' 2>/dev/null; }

install() {
  if ! installed; then
    mkdir -p "$TOOLS"
    python3 -m venv "$VENV" || die "'python3 -m venv' failed; on Debian: apt-get install python3-venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION" >&2 || die "pip install of moto/awscli failed (above)"
  fi
  installed || die "moto did not install into $VENV"
}

endpoint() { echo "http://127.0.0.1:$(cat "$RUN/port")"; }

aws_cli() { "$VENV/bin/aws" --endpoint-url "$(endpoint)" "$@"; }

make_bucket() {
  local name="$1" lock="${2:-}"
  if [ "$lock" = "--no-lock" ]; then
    aws_cli s3api create-bucket --bucket "$name" >/dev/null
  else
    aws_cli s3api create-bucket --bucket "$name" --object-lock-enabled-for-bucket >/dev/null
  fi
}

start() {
  install
  mkdir -p "$RUN"
  if running; then
    endpoint
    return
  fi
  local port="${VIGIL_S3_PORT:-}"
  [ -n "$port" ] || port="$(free_port)"
  echo "$port" >"$RUN/port"
  : >"$RUN/server.log"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >>"$RUN/server.log" 2>&1 &
  echo $! >"$RUN/pid"
  for _ in $(seq 1 300); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      make_bucket "$BUCKET"
      endpoint
      return
    fi
    running || { tail -20 "$RUN/server.log" >&2; die "moto exited while starting (log above: $RUN/server.log)"; }
    sleep 0.1
  done
  tail -20 "$RUN/server.log" >&2
  die "moto did not listen within 30 s (log: $RUN/server.log)"
}

case "${1:-start}" in
  install) install; echo "$VENV" ;;
  installed) installed ;;
  start) start ;;
  stop) stop ;;
  endpoint) running || die "no server running (start it with: $0 start)"; endpoint ;;
  env)
    running || die "no server running (start it with: $0 start)"
    echo "export AWS_ENDPOINT_URL=$(endpoint)"
    echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    echo "export AWS_REGION=$AWS_DEFAULT_REGION"
    ;;
  bucket)
    [ -n "${2:-}" ] || die "usage: $0 bucket NAME [--no-lock]"
    running || die "no server running (start it with: $0 start)"
    make_bucket "$2" "${3:-}"
    ;;
  aws) shift; running || die "no server running (start it with: $0 start)"; aws_cli "$@" ;;
  *) echo "usage: $0 install|installed|start|stop|endpoint|env|bucket NAME [--no-lock]|aws ARGS" >&2; exit 2 ;;
esac
