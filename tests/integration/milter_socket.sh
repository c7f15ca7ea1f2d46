#!/bin/sh
# The milter's sockets: a unix socket gets SocketMode and SocketGroup so only
# the MTA can connect; an inet socket works end to end with TCP_NODELAY.
RIG_PORT=12060
. "$top_srcdir/tests/integration/rig.sh"

rig_config "SocketMode 0660"
rig_milter
check "unix socket: mode 0660 and group postfix" test "$(stat -c '%a %G' "$T/milter.sock")" = "660 postfix"
rig_milter_stop

MPORT=$((RIG_PORT + 5))
rig_config
sed -i "s|^Socket .*|Socket inet:$MPORT@127.0.0.1|" "$CONF"
"$MILTER" -f -c "$CONF" >>"$T/milter.stderr" 2>&1 &
MILTER_PID=$!
wait_for 10 grep -q 'listening on inet:' "$MILTER_LOG"
check "inet socket: listening with TCP_NODELAY" grep -q "listening on inet:$MPORT@127.0.0.1 with TCP_NODELAY" "$MILTER_LOG"
rig_postfix "smtpd_milters = inet:127.0.0.1:$MPORT"
rig_sink
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain
if rig_send "$T/plain.eml" alice@a.test bob@b.test && wire=$(capture); then
	check "inet socket: the message left encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
else
	not_ok "inet socket: the message left encrypted" "$REPLY"
fi
rig_done
