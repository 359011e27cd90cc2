#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback for the tests.
#   .ci/postgres.sh start DIR   initdb into DIR, start the server on a free 127.0.0.1 port, create the
#                               database kliq with user kliq (a random password), print its URL (and
#                               write it to DIR/url, mode 0600)
#   .ci/postgres.sh stop DIR    stop that server (the caller removes DIR)
#   .ci/postgres.sh restart DIR stop it (fast: connections are cut) and start it again on its port
#   .ci/postgres.sh start DIR --until-exit PID
#                               the same, and stop the server and remove DIR once process PID has ended
# initdb refuses root: as root, the cluster runs as the postgres user.
set -euo pipefail
# Close every descriptor inherited beyond stdin/out/err. Started from a test process with system(3),
# this script (and the server and watcher it leaves running) would otherwise hold the other ends of
# that process's pipes and of Foundation's per-child socket pairs: a child started just before would
# never be seen to exit.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
command=${1:?start or stop}
dir=${2:?a directory}
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
fi
[ -x "$bindir/initdb" ] || { echo "postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi

case $command in
start)
  mkdir -p "$dir"
  [ ${#as[@]} -eq 0 ] || chown postgres "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  ( umask 077; printf '%s\n' "$password" > "$dir/pwfile" )
  [ ${#as[@]} -eq 0 ] || chown postgres "$dir/pwfile"
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -U kliq --pwfile="$dir/pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { rm -f "$dir/pwfile"; cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  PGPASSWORD=$password "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U kliq -d postgres -c 'CREATE DATABASE kliq' >/dev/null
  if [ "${3:-}" = --until-exit ] && [ -n "${4:-}" ]; then
    # A watcher of its own, detached from the caller's pipes, so the cluster never outlives its user.
    nohup setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop "$3"; rm -rf "$3"' _ "$4" "$(realpath "$0")" "$dir" \
      >/dev/null 2>&1 </dev/null &
  fi
  url="postgres://kliq:$password@127.0.0.1:$port/kliq?sslmode=disable"
  ( umask 077; printf '%s\n' "$url" > "$dir/url" )
  echo "$url"
  ;;
restart)
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
  ;;
stop)
  [ -d "$dir/data" ] && "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
*)
  echo "postgres.sh: start or stop" >&2; exit 2
  ;;
esac
