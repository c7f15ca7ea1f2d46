#!/bin/sh
# Reloading the milter (SIGUSR1, or cables-keyctl policy set with PidFile):
# new rules apply to new messages, a message in flight keeps its rules, a
# broken file is refused; and the milter drops privileges to User.
RIG_PORT=12100
. "$top_srcdir/tests/integration/rig.sh"

rig_config "PidFile $T/milter.pid" "DefaultPolicy encrypt"
rig_postfix
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

rig_send "$T/plain.eml" alice@a.test bob@b.test
check "before: encrypt policy, no key: accepted in plaintext" test $? = 0

# A message in flight (stopped after RCPT) while the policy becomes require.
$MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --to bob@b.test --pause-file "$T/pause" "$T/plain.eml" \
	> "$T/inflight.reply" 2>&1 &
inflight=$!
wait_for 20 test -f "$T/pause"
check "policy set: keyctl edits the file and signals the milter" sh -c \
	"$KEYCTL -c $CONF policy set b.test require | grep -q 'reloads its configuration'"
check "policy set: the file says require" grep -q '^Policy b.test require$' "$CONF"
check "the milter logs the reload" wait_for 20 grep -q 'configuration reloaded from' "$MILTER_LOG"
rm -f "$T/pause"
wait "$inflight"
check "the message in flight keeps the rules it started with (accepted)" grep -q '^250 ' "$T/inflight.reply"
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "a new message follows the new rules (require, no key: 4xx)" test $? = 4

# A broken file is refused; the running configuration stays.
echo "Ciper aes256-gcm" >> "$CONF"
kill -USR1 "$MILTER_PID"
check "a broken file is not loaded, and the log says why" \
	wait_for 20 grep -q "configuration not reloaded, the old one stays in force: .*unknown key 'Ciper'" "$MILTER_LOG"
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "the old configuration is still in force" test $? = 4
check "the milter survived" kill -0 "$MILTER_PID"
sed -i '/^Ciper/d' "$CONF"

# A new GnuPGHome must be the milter's alone, as at start: one its group may write is refused.
mkdir -m 770 "$T/gnupg2"
sed -i "s|^GnuPGHome .*|GnuPGHome $T/gnupg2|" "$CONF"
kill -USR1 "$MILTER_PID"
check "a GnuPGHome others may write is not loaded on reload, and the log says why" \
	wait_for 20 grep -q "configuration not reloaded, the old one stays in force: GnuPGHome $T/gnupg2: directory $T/gnupg2: writable by group or others" "$MILTER_LOG"
sed -i "s|^GnuPGHome .*|GnuPGHome $T/gnupg|" "$CONF"

# SIGHUP is libmilter's: documented as stop, not reload.  A restart-only key is reported.
sed -i "s|^LogFile .*|LogFile $MILTER_LOG|; \$a SocketMode 0600" "$CONF"
kill -USR1 "$MILTER_PID"
check "a restart-only change is reported" wait_for 20 grep -q 'SocketMode changed (0660 -> 0600); it takes effect when cables-milter restarts' "$MILTER_LOG"
sed -i '/^SocketMode/d' "$CONF"

# User: the milter drops privileges once its socket is set up.
rig_milter_stop
chown nobody "$T/keys.db"* "$T"
chown -R nobody "$T/gnupg"
rig_config "User nobody"
rig_milter
check "User: the milter runs as nobody" test "$(stat -c %U /proc/$MILTER_PID)" = nobody
rig_send "$T/plain.eml" alice@a.test carol@c.test
check "User: mail still flows" test $? = 0
rig_done
