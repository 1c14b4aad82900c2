#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the bank database tests and print its DSN.
#
#   eval "$(bash scripts/start-postgres.sh)"      # exports DUETTO_TEST_PG_DSN
#   bash scripts/start-postgres.sh --stop DIR     # stops the cluster in DIR and removes DIR
#
# The cluster lives in a fresh temporary folder owned by the `postgres` user (PostgreSQL refuses
# to run as root), listens only on 127.0.0.1 at PGPORT (default: the first free port from 55432, away
# from a system server's 5432), trusts local connections and holds one database, `duetto_test`. Nothing is
# left behind but that folder; stopping removes it. Needs Debian's `postgresql` package.
set -euo pipefail

PORT="${PGPORT:-}"
DB="${PGDATABASE_TEST:-duetto_test}"

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  command -v pg_ctl >/dev/null && dirname "$(command -v pg_ctl)" && return
  echo "start-postgres: PostgreSQL not found; install it with: apt-get install -y postgresql" >&2
  exit 1
}
BIN="$(find_bindir)"

# Run a command as the postgres user when we are root; as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

if [ "${1:-}" = "--stop" ]; then
  DIR="${2:?usage: start-postgres.sh --stop DIR}"
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
  exit 0
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "$PORT" ]; then
  for p in $(seq 55432 55499); do port_free "$p" && { PORT="$p"; break; }; done
  [ -n "$PORT" ] || { echo "start-postgres: no free port in 55432-55499; set PGPORT" >&2; exit 1; }
fi

DIR="$(mktemp -d /tmp/duetto-pg.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
chmod 700 "$DIR"
as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
# Socket in the cluster folder: /var/run/postgresql may not exist or be writable here.
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR -c fsync=off" start >/dev/null \
  || { cat "$DIR/server.log" >&2; exit 1; }
as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"

DSN="postgresql://postgres@127.0.0.1:$PORT/$DB"
echo "export DUETTO_TEST_PG_DSN='$DSN'"
echo "export DUETTO_TEST_PG_DIR='$DIR'"
echo "# stop with: bash scripts/start-postgres.sh --stop $DIR" >&2
