#!/usr/bin/env bash
# A real Kafka-protocol broker on loopback for tests and trials: tansu (an Apache-Kafka-compatible broker in
# Rust), pinned, built once with `cargo install` and cached; sqlite storage so end offsets are right and data
# survives a broker restart.
#   deploy/local/kafka.sh install          # build tansu if not cached; prints the binary's path
#   deploy/local/kafka.sh installed        # exit 0 when the binary is cached
#   deploy/local/kafka.sh start            # install, start on 127.0.0.1:PORT, print the bootstrap address
#   deploy/local/kafka.sh stop             # stop the broker this script started (by its PID), keep its data
#   deploy/local/kafka.sh restart          # stop, then start on the same port with the same data
#   deploy/local/kafka.sh topic NAME [PARTITIONS]   # create a topic (tansu never auto-creates; default 3)
#   deploy/local/kafka.sh address          # print the bootstrap address of the running broker
#   deploy/local/kafka.sh wipe             # stop and delete the broker's data
#   deploy/local/kafka.sh client ARGS...   # a standard Kafka client (confluent-kafka, pinned, in a venv):
#                                          #   produce BROKER TOPIC FILE... | count BROKER TOPIC [--group G] | consume ...
# Environment: VIGIL_TOOLS (default ~/.cache/vigil-tools) is where the binary is cached; VIGIL_KAFKA_DIR
# (default $VIGIL_TOOLS/kafka-run) holds the pid, port, log and sqlite file; VIGIL_KAFKA_PORT picks the port
# (default: a free one, kept across restarts); VIGIL_KAFKA_AUTH=1 starts it requiring SASL logins (tests of
# refused logins).
set -euo pipefail

TANSU_VERSION="0.6.0"
# Only the sqlite storage engine is built (default features pull in every engine: about 22 minutes here).
TANSU_FEATURES="libsql"
CLIENT_VERSION="2.16.1"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
ROOT="$TOOLS/tansu-$TANSU_VERSION"
BIN="$ROOT/bin/tansu"
RUN="${VIGIL_KAFKA_DIR:-$TOOLS/kafka-run}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# running, free_port, stop
# shellcheck source=process.sh
. "$(dirname "$0")/process.sh"

install() {
  if [ ! -x "$BIN" ]; then
    command -v cargo >/dev/null || die "cargo is needed to build tansu (install Rust with rustup)"
    mkdir -p "$ROOT"
    echo "kafka.sh: building tansu $TANSU_VERSION (features: $TANSU_FEATURES) into $ROOT; this takes a while once" >&2
    cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features --features "$TANSU_FEATURES" \
      --root "$ROOT" >&2 || die "cargo install tansu $TANSU_VERSION failed (see above)"
  fi
  [ -x "$BIN" ] || die "tansu did not install at $BIN"
}

client() {
  local venv="$TOOLS/kafka-client-$CLIENT_VERSION"
  if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
    python3 -m venv "$venv" || die "'python3 -m venv' failed; on Debian: apt-get install python3-venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "confluent-kafka==$CLIENT_VERSION" >&2
  fi
  exec "$venv/bin/python" "$(dirname "$0")/kafka_client.py" "$@"
}

start() {
  install
  mkdir -p "$RUN"
  if running; then
    echo "127.0.0.1:$(cat "$RUN/port")"
    return
  fi
  local port="${VIGIL_KAFKA_PORT:-}"
  [ -n "$port" ] || { [ -f "$RUN/port" ] && port="$(cat "$RUN/port")"; } || true
  [ -n "$port" ] || port="$(free_port)"
  echo "$port" >"$RUN/port"
  : >"$RUN/broker.log"
  # tansu resolves sqlite://FILE against its working directory.
  (cd "$RUN" && exec "$BIN" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "sqlite://tansu.db" ${VIGIL_KAFKA_AUTH:+--authentication} >>"$RUN/broker.log" 2>&1) &
  echo $! >"$RUN/pid"
  for _ in $(seq 1 300); do
    if grep -q "ready in" "$RUN/broker.log" 2>/dev/null; then
      echo "127.0.0.1:$port"
      return
    fi
    running || { tail -20 "$RUN/broker.log" >&2; die "tansu exited while starting (log above: $RUN/broker.log)"; }
    sleep 0.1
  done
  tail -20 "$RUN/broker.log" >&2
  die "tansu did not report 'ready' within 30 s (log: $RUN/broker.log)"
}

case "${1:-start}" in
  install) install; echo "$BIN" ;;
  installed) [ -x "$BIN" ] ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  address) running || die "no broker running (start it with: $0 start)"; echo "127.0.0.1:$(cat "$RUN/port")" ;;
  topic)
    [ -n "${2:-}" ] || die "usage: $0 topic NAME [PARTITIONS]"
    running || die "no broker running (start it with: $0 start)"
    "$BIN" topic create "$2" --partitions "${3:-3}" --broker "tcp://127.0.0.1:$(cat "$RUN/port")"
    ;;
  wipe) stop; rm -rf "$RUN" ;;
  client) shift; client "$@" ;;
  *) echo "usage: $0 install|start|stop|restart|address|topic NAME [PARTITIONS]|wipe|client ARGS" >&2; exit 2 ;;
esac
