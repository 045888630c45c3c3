# Sourced by ./run test: a real, throwaway PostgreSQL server on a free loopback port.
# Sets PATCHDAY_TEST_POSTGRES_URL; stop_throwaway_postgres removes it again.

start_throwaway_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
  PG_DIR=$(mktemp -d /tmp/patchday-pg.XXXXXX)
  PG_PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PG_RUN=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: run the server as the postgres system user.
    chown postgres: "$PG_DIR"
    PG_RUN=(runuser -u postgres --)
  fi
  "${PG_RUN[@]}" "$bin/initdb" -D "$PG_DIR/data" -U patchday -A trust -E UTF8 --no-sync >/dev/null
  "${PG_RUN[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" >/dev/null
  "${PG_RUN[@]}" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U patchday patchday
  export PATCHDAY_TEST_POSTGRES_URL="postgresql://patchday@127.0.0.1:$PG_PORT/patchday"
  PG_BIN=$bin
}

stop_throwaway_postgres() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
