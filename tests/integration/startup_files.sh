#!/bin/sh
# Files the daemons open while they may still be root (LogFile, PidFile,
# KeydPidFile): a symbolic link, a hard link, a file another user owns or
# one group or others may write is refused at start, with the reason, and
# the file it points at is left as it was.
RIG_PORT=12140
. "$top_srcdir/tests/integration/rig.sh"

KEYD=$BUILD/cables-keyd
printf 'precious\n' > "$T/precious"
chmod 600 "$T/precious"

# run_refused WHAT PROGRAM WANT: PROGRAM (-f -c $CONF) exits 1 within 20 s, saying WANT.
run_refused() {
	what=$1 prog=$2 want=$3
	rm -f "$MILTER_LOG"
	timeout 20 "$prog" -f -c "$CONF" > "$T/out" 2>&1
	rc=$?
	check "$what: refused at start (exit 1)" test "$rc" = 1
	# On stderr, or in the log when the log file was opened first.
	check "$what: the reason" sh -c "cat $T/out $MILTER_LOG | grep -q -- '$want'"
	check "$what: the file it points at is untouched" sh -c "test \"\$(cat $T/precious)\" = precious"
}

ln -s "$T/precious" "$T/link.log"
rig_config "LogFile $T/link.log"
run_refused "milter LogFile is a symbolic link to a root-owned file" "$MILTER" "LogFile $T/link.log: a symbolic link: refused"
rig_config "LogFile $T/link.log" "KeydSocket $T/keyd.sock"
run_refused "keyd LogFile is a symbolic link" "$KEYD" "LogFile $T/link.log: a symbolic link: refused"

ln "$T/precious" "$T/hard.log"
rig_config "LogFile $T/hard.log"
run_refused "LogFile is a hard link to another file" "$MILTER" "LogFile $T/hard.log: has other hard links: refused"
rm -f "$T/hard.log"

: > "$T/open.log"
chmod 666 "$T/open.log"
rig_config "LogFile $T/open.log"
timeout 20 "$MILTER" -f -c "$CONF" > "$T/out" 2>&1
check "LogFile writable by others: refused" test $? = 1
check "LogFile writable by others: the reason" grep -q "LogFile $T/open.log: writable by group or others: refused" "$T/out"

: > "$T/theirs.log"
chown nobody "$T/theirs.log"
chmod 600 "$T/theirs.log"
rig_config "LogFile $T/theirs.log"
timeout 20 "$MILTER" -f -c "$CONF" > "$T/out" 2>&1
check "LogFile owned by another user: refused" test $? = 1
check "LogFile owned by another user: the reason" grep -q "owned by another user: refused" "$T/out"

ln -s "$T/precious" "$T/link.pid"
rig_config "PidFile $T/link.pid"
run_refused "milter PidFile is a symbolic link" "$MILTER" "PidFile $T/link.pid: a symbolic link: refused"
rig_config "KeydSocket $T/keyd.sock" "KeydPidFile $T/link.pid"
run_refused "keyd KeydPidFile is a symbolic link" "$KEYD" "KeydPidFile $T/link.pid: a symbolic link: refused"

# keyd's sockets, like the keyholder's: not in a directory another user owns (the milter's
# /run/cables, KeydSocket's old default, where the milter's user could put an administration
# socket of its own in keyd's place for root's cables-keyctl), nor one under a directory others
# may write that is not sticky (between the check and bind() they could swap it).
mkdir -p "$T/milters" && chown nobody "$T/milters" && chmod 755 "$T/milters"
rig_config "KeydSocket $T/milters/keyd.sock"
run_refused "keyd KeydSocket in a directory another user owns" "$KEYD" \
	".sock: directory $T/milters: owned by another user"
check "... and no socket was made there" test ! -e "$T/milters/keyd.sock"
mkdir -p "$T/open/keyd" && chmod 777 "$T/open" && chmod 755 "$T/open/keyd"
rig_config "KeydSocket $T/open/keyd/keyd.sock"
run_refused "keyd KeydSocket under a directory others may write (not sticky)" "$KEYD" \
	".sock: directory $T/open: writable by group or others (and not sticky)"
chmod 1777 "$T/open"
rig_config "KeydSocket $T/open/keyd/keyd.sock"
"$KEYD" -f -c "$CONF" > "$T/keyd.out" 2>&1 &
KEYD_PID=$!
echo "$KEYD_PID" >> "$T/pids"
wait_for 10 test -S "$T/open/keyd/keyd.sock"
check "keyd KeydSocket under a sticky directory others may write (/tmp): served" test -S "$T/open/keyd/keyd.sock"
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null

# GnuPGHome (issue 14): the milter's own, under directories keyd's user cannot swap.  /var/lib/cables is
# shared by the milter and keyd (group cables): root:cables 3770, so neither can rename the other's entries.
# check_home WHAT WANT: cables-milter -n refuses with WANT (and the same at start).
check_home() {
	timeout 20 "$MILTER" -n -c "$CONF" > "$T/out" 2>&1
	check "GnuPGHome $1: -n refuses it (exit 1)" test $? = 1
	check "GnuPGHome $1: -n says why" grep -q -- "$2" "$T/out"
}
mkdir -p "$T/state" && chown root:nogroup "$T/state" && chmod 3770 "$T/state"
mkdir -p "$T/state/gnupg" && chmod 700 "$T/state/gnupg"
rig_config "GnuPGHome $T/state/gnupg"
check "GnuPGHome: the milter's own, 0700, under a sticky shared directory (3770): -n accepts it" \
	sh -c "'$MILTER' -n -c '$CONF' | grep -q 'configuration OK'"
chmod 2770 "$T/state"
check_home "under a shared directory that is not sticky (2770: keyd's user could rename it)" \
	"GnuPGHome $T/state/gnupg: directory $T/state: writable by group or others (and not sticky)"
run_refused "GnuPGHome under a shared directory that is not sticky" "$MILTER" "directory $T/state: writable by group or others (and not sticky)"
chmod 3770 "$T/state"
chmod 770 "$T/state/gnupg"
check_home "writable by its group" "GnuPGHome $T/state/gnupg: directory $T/state/gnupg: writable by group or others"
chmod 700 "$T/state/gnupg" && chown nobody "$T/state/gnupg"
check_home "owned by another user" "GnuPGHome $T/state/gnupg: directory $T/state/gnupg (uid $(id -u nobody), not uid 0): owned by another user"
rig_config "GnuPGHome $T/state/gnupg" "User nobody"
check "GnuPGHome: owned by User (nobody) is the milter's own: -n accepts it" \
	sh -c "'$MILTER' -n -c '$CONF' | grep -q 'configuration OK'"
rm -rf "$T/state/gnupg" && ln -s "$T" "$T/state/gnupg"
rig_config "GnuPGHome $T/state/gnupg"
check_home "a symbolic link" "GnuPGHome $T/state/gnupg: directory $T/state/gnupg: not a directory (a symbolic link?)"
rm -f "$T/state/gnupg"
rig_config "GnuPGHome $T/state/gnupg" "User nobody" "Socket unix:$T/state/milter.sock"
check "GnuPGHome: missing under a sticky shared directory: -n accepts it (the milter makes it)" \
	sh -c "'$MILTER' -n -c '$CONF' | grep -q 'configuration OK'"

# A plain file of root's, as the daemons create it, is used.
rig_config "PidFile $T/milter.pid"
rm -f "$MILTER_LOG"
rig_milter
wait_for 10 test -s "$T/milter.pid"	# written just after the socket appears
check "a fresh PidFile: written with the milter's pid" test "$(cat "$T/milter.pid")" = "$MILTER_PID"
check "a fresh LogFile: mode 0640, root's" test "$(stat -c '%a %U' "$MILTER_LOG")" = "640 root"
rig_milter_stop
rig_done
