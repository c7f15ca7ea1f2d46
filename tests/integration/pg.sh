# pg.sh - sourced by the tests of the PostgreSQL key store, after rig.sh.
#
# pg_start DIR PORT starts a private PostgreSQL 15 cluster in DIR (initdb as
# user postgres, trust authentication, listening on 127.0.0.1:PORT and a
# socket in DIR only; never the system cluster), makes database cables and
# sets PG_URL.  pg_stop and pg_restart stop and start it again; the exit
# trap stops it before rig_cleanup (by pg_ctl, never by a pid that may have
# been reused).  Without the binaries the test is skipped.

PGBIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ] || ! id postgres >/dev/null 2>&1; then
	echo "1..0 # SKIP PostgreSQL 15 is not installed (run tools/install-deps)"
	exit 0
fi

pg_as() { runuser -u postgres -- "$@"; }

pg_start() {
	PG_DIR=$1 PG_PORT=$2
	mkdir -p "$PG_DIR"
	chown postgres "$PG_DIR"
	chmod 700 "$PG_DIR"
	pg_as "$PGBIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log"; return 1; }
	pg_restart || return 1
	pg_as "$PGBIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres cables || return 1
	PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/cables"
}

# Start (again) and wait until it accepts connections (pg_ctl -w).
pg_restart() {
	pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
	    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c listen_addresses=127.0.0.1" start >/dev/null ||
		{ tail -20 "$PG_DIR/server.log"; return 1; }
}

pg_stop() {
	pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}

PG_DIR=
pg_cleanup() {
	[ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
		pg_as "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	rig_cleanup
}
trap pg_cleanup EXIT

# psql against the test database (PG_DB, default cables).
pg_sql() {
	pg_as "$PGBIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "${PG_DB:-cables}" -qAtX -v ON_ERROR_STOP=1 -c "$1"
}
