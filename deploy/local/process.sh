# Process helpers shared by the local service scripts (sourced, not run). The caller sets RUN, the folder
# that holds the service's pid file.

# True while the process this script started is alive.
running() { [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; }

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Stops only the process this script started (by its PID): TERM, then KILL after 10 s.
stop() {
  if running; then
    local pid
    pid="$(cat "$RUN/pid")"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$RUN/pid"
}
