#!/bin/sh
# The systemd units in etc/ (issue 14): every unit passes systemd-analyze
# verify; each daemon has its own (the milter, keyd, the keyholder); keyd's
# and the keyholder's run as users of their own (KeydUser, KeyholderUser,
# switched to after they make their sockets), none of them as the milter's
# User; each carries the hardening the issue asks for; and the runtime
# directories the units make are the ones the default configuration uses.
RIG_PORT=12690
. "$top_srcdir/tests/integration/rig.sh"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze is not installed (package systemd)"
	exit 0
fi

units=$(cd "$SRC/etc" && ls ./*.service | sed 's|^\./||')
check "etc/ has a unit for each daemon" \
	test "$(echo $units)" = "cables-keyd.service cables-keyholder.service cables-milter.service"
mkdir -p "$T/units" "$T/man/man1" "$T/man/man5" "$T/man/man8"
# verify runs man(1) for each Documentation=man: page: the tree's pages stand in for installed ones.
for page in "$SRC"/man/*.[158]; do ln -s "$page" "$T/man/man${page##*.}/"; done
export MANPATH=$T/man
for u in $units; do
	# The build's programs stand in for the installed ones (verify checks that ExecStart is executable).
	sed -e "s|/usr/local/sbin/|$BUILD/|" "$SRC/etc/$u" > "$T/units/$u"
	check "$u: systemd-analyze verify" systemd-analyze verify "$T/units/$u"
	for d in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes RestrictAddressFamilies= \
	    CapabilityBoundingSet= MemoryDenyWriteExecute=yes LockPersonality=yes SystemCallFilter=@system-service; do
		check "$u: $d" grep -q "^$d" "$T/units/$u"
	done
	if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
		score=$(systemd-analyze security --offline=yes "$T/units/$u" 2>/dev/null |
			sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
		diag "$u: systemd-analyze security exposure $score"
	fi
done
check "cables-keyd.service: no User= (it switches to KeydUser itself after making its sockets)" \
	sh -c "! grep -q '^User=' '$T/units/cables-keyd.service'"
check "cables-keyholder.service: no network at all" grep -q '^PrivateNetwork=yes' "$T/units/cables-keyholder.service"
check "cables-keyholder.service: UNIX sockets only" \
	grep -qx 'RestrictAddressFamilies=AF_UNIX' "$T/units/cables-keyholder.service"
check "cables-milter.service: no capabilities" grep -qx 'CapabilityBoundingSet=' "$T/units/cables-milter.service"
# /run/cables and the milter's socket get the unit's Group=: Postfix's, as README's table says, never
# group cables, which keyd's user is in (it would speak the milter protocol and have mail decrypted).
check "cables-milter.service: Group=postfix, so /run/cables is cables:postfix (README's table)" \
	grep -qx 'Group=postfix' "$T/units/cables-milter.service"
check "cables-milter.service: its runtime directory is not group cables (keyd's user's group)" \
	sh -c "! grep -qx 'Group=cables' '$T/units/cables-milter.service'"
# /var/lib/cables is shared (root:cables 3770, sticky): a unit that owned it (StateDirectory=) could replace
# the other daemons' entries, keyd the milter's GnuPG home; keyd and the keyholder do not see that home at all.
for u in $units; do
	check "$u: no StateDirectory= (it would give the shared /var/lib/cables to the unit's user)" \
		sh -c "! grep -q '^StateDirectory' '$T/units/$u'"
done
for u in cables-keyd.service cables-keyholder.service; do
	check "$u: the milter's GnuPG home is hidden from it" \
		grep -qx 'InaccessiblePaths=-/var/lib/cables/gnupg' "$T/units/$u"
done
check "cables-milter.service: -n before start (it refuses a GnuPGHome that is not the milter's alone)" \
	grep -q '^ExecStartPre=.*cables-milter -n ' "$T/units/cables-milter.service"
check "README: keyd's user is in group cables, not postfix" \
	grep -qF "adduser --system --no-create-home --ingroup cables cables-keyd" "$SRC/README.md"

# The defaults live in the units' runtime directories.
conf=$SRC/etc/cables.conf
for pair in "KeydSocket:cables-keyd.service" "KeyholderSocket:cables-keyholder.service"; do
	key=${pair%%:*} unit=${pair#*:}
	dir=$(sed -n "s|^# $key \\(/run/[^/]*\\)/.*|\\1|p" "$conf")
	check "$key's default directory $dir is $unit's RuntimeDirectory" \
		grep -qx "RuntimeDirectory=${dir#/run/}" "$T/units/$unit"
done
for row in '/run/cables` | cables:postfix' '/run/cables-keyd` | root:root' '/run/cables-keyholder` | root:cables' \
    '/var/lib/cables` | root:cables | 3770' '/var/lib/cables/gnupg` | cables:cables | 0700' \
    '/etc/cables/keystore.key` | cables-keys' \
    '/etc/cables/exchange.key` | cables-keys'; do
	check "README's table of directories, users and modes: \`$row" grep -qF "| \`$row" "$SRC/README.md"
done
for user in cables cables-keyd cables-keys; do
	check "README: the users table names $user" grep -qF "| \`$user\` |" "$SRC/README.md"
done
rig_done
