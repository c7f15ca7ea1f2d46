#!/bin/sh
# The Debian package (issue 19): debian/ builds with dpkg-buildpackage -us
# -uc -b (in a copy of the tree, outside it, so that the tree and the other
# tests' builds are left alone); the .deb holds the four programs, the man
# pages, /etc/cables/cables.conf as a conffile (with the package's users)
# and the systemd units with the package's paths; unpacked into a
# throwaway root, its cables-milter -n accepts a minimal configuration and
# refuses a broken one.  The maintainer scripts run in a private mount
# namespace over copies of /etc and /var (the machine's own users, units
# and directories are never touched): postinst makes the users, groups and
# directories README's tables ask for and enables the units, keeps an
# admin's dpkg-statoverride, runs again on upgrade, and the package's
# daemons accept the installed configuration there; postrm purge removes
# what it made.  lintian reports no error (its warnings are shown), and it
# is first shown to report errors on a broken package, so that a lintian
# that checks nothing cannot pass.  Needs no port: the block is declared
# for port_blocks.sh only.
RIG_PORT=12960
. "$top_srcdir/tests/integration/rig.sh"

for tool in dpkg-buildpackage dh lintian git unshare; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed (tools/install-deps installs dpkg-dev, debhelper, lintian)"
		exit 0
	fi
done
if [ ! -f "$SRC/debian/rules" ] || ! git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	echo "1..0 # SKIP $SRC is not a git checkout with debian/ (the package is built from the files git knows)"
	exit 0
fi
# make check's jobserver and variables are not the package build's.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

# The files git knows (committed or not; deleted ones left out), copied outside the tree.
mkdir -p "$T/pkg/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 sh -c 'for f; do [ -f "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh |
	xargs -0 cp -P --parents -t "$T/pkg/src") || { echo "Bail out! cannot copy the source tree"; exit 1; }
# A repository of the copy: after the build, git status shows what the build left that .gitignore misses.
(cd "$T/pkg/src" && git init -q && git add -A &&
	git -c user.name=t -c user.email=t@t commit -q -m copy) || { echo "Bail out! git init in the copy"; exit 1; }

start=$(date +%s)
if (cd "$T/pkg/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b builds the package ($(($(date +%s) - start)) s)"
else
	not_ok "dpkg-buildpackage -us -uc -b builds the package" "$(tail -n 40 "$T/build.log")"
	rig_done
	exit 1
fi
deb=$(ls "$T"/pkg/cables_*.deb 2>/dev/null | head -n 1)
changes=$(ls "$T"/pkg/cables_*.changes 2>/dev/null | head -n 1)
check "the build made cables_*.deb and a .changes" test -f "$deb" -a -f "$changes"
check "the build leaves nothing in the tree that .gitignore does not cover" \
	sh -c "cd '$T/pkg/src' && test -z \"\$(git status --porcelain)\" || { git status --porcelain; exit 1; }"
check "the package builds out of the tree's way (debian/build), never configuring the tree itself" \
	sh -c "test -f '$T/pkg/src/debian/build/config.status' && ! test -f '$T/pkg/src/config.status'"

# What the .deb holds.
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$T/contents"
for f in /usr/sbin/cables-milter /usr/sbin/cables-keyd /usr/sbin/cables-keyholder /usr/bin/cables-keyctl \
    /usr/share/man/man8/cables-milter.8.gz /usr/share/man/man8/cables-keyd.8.gz \
    /usr/share/man/man8/cables-keyholder.8.gz /usr/share/man/man1/cables-keyctl.1.gz \
    /usr/share/man/man5/cables.conf.5.gz /etc/cables/cables.conf \
    /lib/systemd/system/cables-milter.service /lib/systemd/system/cables-keyd.service \
    /lib/systemd/system/cables-keyholder.service /usr/share/doc/cables/copyright; do
	check "the package holds $f" grep -qx "$f" "$T/contents"
done
check "/etc/cables/cables.conf is a conffile" \
	sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/cables/cables.conf"
check "nothing under /usr/local" sh -c "! grep -q '^/usr/local' '$T/contents'"

ROOT=$T/root
dpkg-deb -x "$deb" "$ROOT" && dpkg-deb -e "$deb" "$ROOT/DEBIAN"
pconf=$ROOT/etc/cables/cables.conf
for line in "User cables" "KeydUser cables-keyd" "KeyholderUser cables-keys"; do
	check "the packaged cables.conf sets $line (README's users)" grep -qx "$line" "$pconf"
done
check "the packaged cables.conf is etc/cables.conf but for those three lines" \
	sh -c "test \"\$(diff '$SRC/etc/cables.conf' '$pconf' | grep -c '^[<>]')\" = 6"
for u in cables-milter cables-keyd cables-keyholder; do
	unit=$ROOT/lib/systemd/system/$u.service
	check "$u.service runs /usr/sbin/$u (the package's path), nothing from /usr/local" \
		sh -c "grep -q '^ExecStart=/usr/sbin/$u ' '$unit' && ! grep -q /usr/local '$unit'"
	if command -v systemd-analyze >/dev/null 2>&1; then
		mkdir -p "$T/units"
		sed "s|/usr/sbin/|$ROOT/usr/sbin/|" "$unit" >"$T/units/$u.service"
		check "$u.service as packaged: systemd-analyze verify" \
			env MANPATH="$ROOT/usr/share/man" systemd-analyze verify "$T/units/$u.service"
	fi
done
check "the package's programs find every library they link" \
	sh -c "! ldd $ROOT/usr/sbin/cables-* $ROOT/usr/bin/cables-keyctl | grep 'not found'"

# cables-milter -n from the throwaway root, with a minimal configuration.
cat >"$T/minimal.conf" <<CF
LocalDomains example.org
Socket unix:$T/milter.sock
KeyStore $T/keys.db
KeyStoreKey $T/store.key
GnuPGHome $T/gnupg
KeydSocket none
KeyholderSocket none
CF
check "cables-milter -n from the package accepts a minimal configuration" \
	"$ROOT/usr/sbin/cables-milter" -n -c "$T/minimal.conf"
printf 'LocalDomains example.org\nCipher rot13\n' >"$T/broken.conf"
if out=$("$ROOT/usr/sbin/cables-milter" -n -c "$T/broken.conf" 2>&1); then
	not_ok "cables-milter -n from the package refuses a broken configuration" "$out"
else
	check "cables-milter -n from the package refuses a broken configuration, naming the file and line" \
		sh -c "printf '%s\n' \"\$1\" | grep -q 'broken.conf.*2'" sh "$out"
fi

# The maintainer scripts, in a mount namespace of their own over copies of
# /etc (with the package's conffile) and /var, and the package's units in
# /lib/systemd/system: what they make is looked at there and vanishes with it.
cat >"$T/ns.sh" <<'NS'
set -u
mount --make-rprivate / || exit 1
cp -a /etc "$T/ns-etc" && cp -a "$ROOT/etc/." "$T/ns-etc/" && mount --bind "$T/ns-etc" /etc || exit 1
cp -a /lib/systemd/system "$T/ns-units" && cp "$ROOT"/lib/systemd/system/*.service "$T/ns-units/" &&
	mount --bind "$T/ns-units" /lib/systemd/system || exit 1
mkdir -p "$T/ns-var/lib/dpkg" "$T/ns-var/log" "$T/ns-var/tmp" "$T/ns-var/cache"
cp /var/lib/dpkg/statoverride "$T/ns-var/lib/dpkg/" 2>/dev/null || : >"$T/ns-var/lib/dpkg/statoverride"
mount --bind "$T/ns-var" /var || exit 1
# No unit starts: there is no systemd here, and no policy-rc.d is needed for that.
r() { echo "$1=$2"; }
# script NAME ARG...: a maintainer script with the environment dpkg gives it (deb-systemd-helper checks it).
script() {
	name=$1; shift
	DPKG_MAINTSCRIPT_PACKAGE=cables DPKG_MAINTSCRIPT_NAME=$name DPKG_MAINTSCRIPT_ARCH=$(dpkg --print-architecture) \
		DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 DPKG_ROOT= sh "$ROOT/DEBIAN/$name" "$@" >>"$T/ns-postinst.out" 2>&1
}
script postinst configure ''; r postinst $?
for u in cables cables-keyd cables-keys; do
	r "passwd-$u" "$(getent passwd "$u" | cut -d: -f6,7)"
	r "groups-$u" "$(id -gn "$u" 2>/dev/null):$(id -Gn "$u" 2>/dev/null | tr ' ' ',')"
done
for d in /var/lib/cables /var/lib/cables/gnupg /etc/cables /etc/cables/cables.conf \
    /etc/cables/keystore.key /etc/cables/reinject.key; do
	r "stat-$d" "$(stat -c '%U:%G:%a' "$d" 2>&1)"
done
for k in keystore reinject; do
	r "format-$k" "$(grep -cxE '[0-9a-f]{64}' "/etc/cables/$k.key") $(wc -c <"/etc/cables/$k.key")"
	r "sum-$k" "$(sha256sum <"/etc/cables/$k.key")"
done
for u in cables-milter cables-keyd cables-keyholder; do
	r "enabled-$u" "$(readlink "/etc/systemd/system/multi-user.target.wants/$u.service")"
done
# The package's daemons, as installed: the configuration they would start with.
for p in cables-milter cables-keyd cables-keyholder; do
	"$ROOT/usr/sbin/$p" -n -c /etc/cables/cables.conf >"$T/ns-$p.out" 2>&1; r "check-$p" $?
done
# Upgrade from a version that made /var/lib/cables cables:cables 2770 (keyd's user could rename the milter's
# GnuPG home): the milter refuses it, and postinst makes it root:cables 3770.
chown cables:cables /var/lib/cables && chmod 2770 /var/lib/cables
"$ROOT/usr/sbin/cables-milter" -n -c /etc/cables/cables.conf >"$T/ns-old.out" 2>&1; r check-old $?
r check-old-why "$(grep -c 'GnuPGHome /var/lib/cables/gnupg: directory /var/lib/cables: writable by group or others (and not sticky)' "$T/ns-old.out")"
script postinst configure 0.1.0-0; r upgrade-old $?
r upgrade-old-stat "$(stat -c '%U:%G:%a' /var/lib/cables)"
"$ROOT/usr/sbin/cables-milter" -n -c /etc/cables/cables.conf >>"$T/ns-old.out" 2>&1; r check-new $?
# Upgrade: runs again, keeping what is there; an admin's statoverride wins.
dpkg-statoverride --update --add root cables 0750 /var/lib/cables >>"$T/ns-postinst.out" 2>&1
script postinst configure 0.1.0-0; r upgrade $?
r statoverride "$(stat -c '%U:%G:%a' /var/lib/cables)"
r upgrade-passwd "$(grep -c '^cables' /etc/passwd)"
for k in keystore reinject; do r "upgrade-sum-$k" "$(sha256sum <"/etc/cables/$k.key")"; done
# Remove and purge.
script prerm remove; r prerm $?
script postrm remove; r postrm-remove $?
rm -f /etc/cables/cables.conf	# dpkg removes conffiles on purge before postrm
dpkg-statoverride --remove /var/lib/cables >>"$T/ns-postinst.out" 2>&1
r left "$(ls -A /var/lib/cables | tr '\n' ' ')"
script postrm purge; r purge $?
r purged "$(ls -d /var/lib/cables /var/lib/cables/gnupg /etc/cables/reinject.key /etc/systemd/system/multi-user.target.wants/cables-*.service 2>/dev/null | tr '\n' ' ')"
r kept "$(ls -A /var/lib/cables /etc/cables 2>&1 | tr '\n' ' ')"
# With no key store left, purge leaves nothing.
rm -f /var/lib/cables/keys.db*
script postrm purge; r purge-empty $?
r purged-empty "$(ls -d /var/lib/cables /etc/cables 2>/dev/null | tr '\n' ' ')"
NS
machine_ids=$(cat /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null | sha256sum)
T=$T ROOT=$ROOT unshare -m sh "$T/ns.sh" >"$T/ns.results" 2>"$T/ns.err"
# result KEY: the value the namespace recorded.
result() { sed -n "s|^$1=||p" "$T/ns.results" | head -n 1; }
is() {
	desc=$1 key=$2 want=$3
	got=$(result "$key")
	if [ "$got" = "$want" ]; then ok "$desc"; else
		not_ok "$desc" "$key: got '$got', want '$want'" "$(cat "$T/ns.err" "$T/ns-postinst.out" 2>/dev/null | tail -n 20)"
	fi
}
is "postinst configure succeeds" postinst 0
is "user cables: home /var/lib/cables, no login" passwd-cables "/var/lib/cables:/usr/sbin/nologin"
is "user cables-keyd: no home, no login" passwd-cables-keyd "/nonexistent:/usr/sbin/nologin"
is "user cables-keys: no home, no login" passwd-cables-keys "/nonexistent:/usr/sbin/nologin"
is "user cables: group cables" groups-cables "cables:cables"
is "user cables-keyd: in group cables only (never postfix: the milter's socket)" groups-cables-keyd "cables:cables"
is "user cables-keys: in group cables only" groups-cables-keys "cables:cables"
# readme PATH: owner:group:mode of PATH's row in README's table of paths (mode without leading zeros).
readme() {
	awk -F'|' -v p="\`$1\`" '{ for (i = 2; i <= 4; i++) gsub(/^ +| +$/, "", $i) }
		$2 == p { sub(/^0+/, "", $4); print $3 ":" $4; exit }' "$SRC/README.md"
}
want=$(readme /var/lib/cables)
check "README's table has /var/lib/cables as root:cables 3770 (sticky: no daemon may replace another's entries)" \
	test "$want" = "root:cables:3770"
is "/var/lib/cables is as README's table says" stat-/var/lib/cables "$want"
is "upgrade from 2770: cables-milter -n refuses the GnuPG home under it" check-old 1
is "... saying why" check-old-why 1
is "upgrade from 2770: postinst succeeds" upgrade-old 0
is "upgrade from 2770: /var/lib/cables is root:cables 3770 afterwards" upgrade-old-stat "root:cables:3770"
is "upgrade from 2770: cables-milter -n accepts it then" check-new 0
is "/var/lib/cables/gnupg (GnuPGHome) is cables:cables 0700" stat-/var/lib/cables/gnupg "cables:cables:700"
is "/etc/cables is root:root 0755" stat-/etc/cables "root:root:755"
is "/etc/cables/cables.conf is as README's table says" stat-/etc/cables/cables.conf "$(readme /etc/cables/cables.conf)"
# README: KeyStoreKey is cables-keys' 0600, ReinjectKey the milter's (cables) 0600.
check "README's table: keystore.key is cables-keys' 0600, ReinjectKey cables' 0600" \
	test "$(readme /etc/cables/keystore.key):$(readme ReinjectKey)" = "cables-keys:600:cables:600"
is "postinst makes KeyStoreKey, cables-keys' alone (0600)" stat-/etc/cables/keystore.key "cables-keys:cables:600"
is "postinst makes ReinjectKey, the milter's alone (0600)" stat-/etc/cables/reinject.key "cables:cables:600"
is "KeyStoreKey is 64 hex digits and a newline, as cables-keyctl makes it" format-keystore "1 65"
is "ReinjectKey is 64 hex digits and a newline" format-reinject "1 65"
check "the two keys differ" test "$(result sum-keystore)" != "$(result sum-reinject)"
for u in cables-milter cables-keyd cables-keyholder; do
	is "postinst enables $u.service (multi-user.target)" "enabled-$u" "/lib/systemd/system/$u.service"
	is "$u -n accepts the installed /etc/cables/cables.conf" "check-$u" 0
done
is "postinst runs again on upgrade" upgrade 0
is "postinst keeps an admin's dpkg-statoverride of /var/lib/cables" statoverride "root:cables:750"
is "postinst on upgrade adds no second user" upgrade-passwd 3
is "postinst on upgrade keeps KeyStoreKey" upgrade-sum-keystore "$(result sum-keystore)"
is "postinst on upgrade keeps ReinjectKey" upgrade-sum-reinject "$(result sum-reinject)"
is "prerm remove succeeds" prerm 0
is "postrm remove succeeds" postrm-remove 0
is "postrm purge succeeds" purge 0
is "purge keeps the key store the daemons made, removes ReinjectKey, the empty GnuPG home and the units' links" \
	purged "/var/lib/cables "
is "what purge keeps is the key store and KeyStoreKey" kept "/etc/cables: keystore.key  /var/lib/cables: keys.db "
is "postrm purge again succeeds" purge-empty 0
is "purge with no key store left removes KeyStoreKey, /etc/cables and /var/lib/cables" purged-empty ""
check "the machine's own users and groups are untouched (the namespace had copies)" \
	test "$(cat /etc/passwd /etc/group /etc/shadow /etc/gshadow 2>/dev/null | sha256sum)" = "$machine_ids"

# lintian: first on a package made broken on purpose (no copyright file,
# adduser --system without a home), which must give errors.
mkdir -p "$T/bad/DEBIAN" "$T/bad/usr/bin"
printf 'Package: cables-broken\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@t.example>\nDescription: broken\n broken on purpose\n' \
	>"$T/bad/DEBIAN/control"
printf '#!/bin/sh\nset -e\nadduser --system brokenuser\n' >"$T/bad/DEBIAN/postinst"
chmod 755 "$T/bad/DEBIAN/postinst"
dpkg-deb -b --root-owner-group "$T/bad" "$T/bad.deb" >/dev/null 2>&1
lintian "$T/bad.deb" >"$T/lintian-bad.out" 2>&1
check "lintian reports errors on a package broken on purpose" grep -q '^E: ' "$T/lintian-bad.out"
lintian --tag-display-limit 0 "$changes" >"$T/lintian.out" 2>&1
grep -E '^[WI]: ' "$T/lintian.out" | sed 's/^/lintian: /' | while read -r l; do diag "$l"; done
check "lintian reports no error on the package" sh -c "! grep -E '^E: ' '$T/lintian.out'"
rig_done
