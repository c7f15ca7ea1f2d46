#!/bin/sh
# cables-keyctl and cables-milter -n as an administrator meets them: exit
# status 0/1/2, one-line errors that say what and why, private keys only
# when asked and never in the clear on disk.
RIG_PORT=12050
. "$top_srcdir/tests/integration/rig.sh"

rig_config
# expect STATUS PATTERN DESCRIPTION COMMAND...: exit status and a line matching PATTERN (stdout+stderr).
expect() {
	want=$1 pattern=$2 desc=$3
	shift 3
	out=$("$@" 2>&1)
	got=$?
	if [ "$got" = "$want" ] && printf '%s\n' "$out" | grep -q -- "$pattern"; then
		ok "$desc"
	else
		not_ok "$desc" "exit $got (expected $want), output:" "$out"
	fi
}

expect 2 '^usage: cables-keyctl' "no command: usage, exit 2" "$KEYCTL"
expect 2 "unknown command 'frob'" "unknown command: exit 2" keyctl frob
expect 2 'generate needs one format: --smime or --pgp' "generate without a format: exit 2" keyctl generate bob@b.test
expect 2 'generate needs one format: --smime or --pgp' "generate with two formats: exit 2" keyctl generate bob@b.test --smime --pgp
expect 2 "--algo: 'dsa' is not rsa3072 or p256" "generate --algo dsa: exit 2" keyctl generate bob@b.test --smime --algo dsa
expect 2 "--days: '0' is not a number of days" "generate --days 0: exit 2" keyctl generate bob@b.test --smime --days 0
expect 1 "'not-an-address' is not an email address" "generate for a non-address: exit 1" keyctl generate not-an-address --smime
expect 2 "--algo: 'p256' is not ed25519 or rsa3072 (with --pgp)" "generate --pgp --algo p256: exit 2" keyctl generate bob@b.test --pgp --algo p256
expect 1 "$T/none.conf: cannot open: No such file or directory" "missing -c file: exit 1 naming it" \
	"$KEYCTL" -c "$T/none.conf" list
printf 'KeyStore %s/x.db\nCiper aes256-gcm\n' "$T" > "$T/bad.conf"
expect 1 "$T/bad.conf:2: unknown key 'Ciper'" "bad config: file:line and the key" "$KEYCTL" -c "$T/bad.conf" list

expect 0 "cables-keyctl: $CONF: configuration OK" "keyctl -n: good configuration" keyctl -n
expect 1 "$T/bad.conf:2: unknown key 'Ciper'" "keyctl -n: bad configuration, file:line" "$KEYCTL" -c "$T/bad.conf" -n
expect 0 '^generated S/MIME key for bob@b.test: RSA 3072, fingerprint [0-9a-f]\{64\}, valid until' \
	"generate RSA: exit 0" keyctl generate Bob@B.TEST --smime
expect 0 'EC P-256' "generate P-256" keyctl generate alice@a.test --smime --algo p256 --days 30
check "key store is mode 0600" test "$(stat -c %a "$T/keys.db")" = 600
check "store key is mode 0600, 64 hex digits" sh -c "test \$(stat -c %a $T/store.key) = 600 && grep -qx '[0-9a-f]\{64\}' $T/store.key"
expect 0 '^bob@b.test  *smime  *[0-9a-f]\{16\} .* generated  *yes$' "list shows the key and its private half" keyctl list
expect 0 '^usable:      yes$' "show: usable" keyctl show bob+tag@b.test
expect 1 'no key for nobody@b.test' "show unknown: exit 1" keyctl show nobody@b.test

keyctl export bob@b.test > "$T/bob-cert.pem"
check "export: a certificate and no private key" sh -c \
	"grep -q 'BEGIN CERTIFICATE' $T/bob-cert.pem && ! grep -q PRIVATE $T/bob-cert.pem"
keyctl export bob@b.test --private --out "$T/bob-key.pem"
check "export --private --out: mode 0600" test "$(stat -c %a "$T/bob-key.pem")" = 600
check "export --private: the key matches the certificate" sh -c \
	"[ \"\$(openssl x509 -in $T/bob-key.pem -noout -pubkey)\" = \"\$(openssl pkey -in $T/bob-key.pem -pubout)\" ]"
openssl pkey -in "$T/bob-key.pem" -outform DER -out "$T/bob-key.der"
check "the store never holds the private key in the clear" $PY -c "
import sys, glob
key = open('$T/bob-key.der', 'rb').read()
for f in glob.glob('$T/keys.db*'):
    if key[-64:] in open(f, 'rb').read():
        sys.exit(f + ' contains the private key')
"

# Import: another party's certificate in PEM, DER and PKCS#12.
C=$T/carol
mkdir -p "$C"
printf 'KeyStore %s/keys.db\nKeyStoreKey %s/store.key\n' "$C" "$C" > "$C/conf"
"$KEYCTL" -c "$C/conf" generate carol@c.test --smime --algo p256 >/dev/null
"$KEYCTL" -c "$C/conf" export carol@c.test > "$C/cert.pem"
"$KEYCTL" -c "$C/conf" export carol@c.test --private --out "$C/both.pem"
openssl x509 -in "$C/cert.pem" -outform DER -out "$C/cert.der"
echo 'pass phrase' > "$C/pass"
openssl pkcs12 -export -in "$C/both.pem" -passout file:"$C/pass" -out "$C/carol.p12"
expect 0 '^imported S/MIME certificate for carol@c.test: fingerprint' "import PEM" keyctl import "$C/cert.pem"
expect 0 'imported S/MIME certificate for carol@c.test' "import DER" keyctl import "$C/cert.der"
expect 1 'wrong passphrase' "import PKCS#12 without its passphrase: exit 1" keyctl import "$C/carol.p12"
expect 0 'with private key' "import PKCS#12 with --passphrase-file" keyctl import "$C/carol.p12" --passphrase-file "$C/pass"
expect 0 '^carol@c.test .* yes$' "after the PKCS#12, the store holds carol's private key" keyctl list
expect 1 'nothing imported for dave@c.test' "import --for another address: exit 1" keyctl import "$C/cert.pem" --for dave@c.test
echo "hello" > "$T/junk"
expect 1 'not a PEM, DER certificate or PKCS#12 file' "import garbage: exit 1" keyctl import "$T/junk"
expect 1 "$T/missing.pem: No such file or directory" "import a missing file: exit 1" keyctl import "$T/missing.pem"
expect 2 'import needs exactly one FILE' "import without a file: exit 2" keyctl import

# Delete.
expect 2 "--fingerprint: 'xyz' is not a hex prefix" "delete --fingerprint xyz: exit 2" keyctl delete carol@c.test --fingerprint xyz
expect 1 'no key for nobody@c.test' "delete unknown: exit 1" keyctl delete nobody@c.test
expect 0 'deleted 1 key for carol@c.test' "delete" keyctl delete carol@c.test
expect 1 'no key for carol@c.test' "deleted means gone" keyctl show carol@c.test

# A store key readable by others is refused.
chmod 644 "$T/store.key"
expect 1 'accessible by group or others (mode 0644); chmod 600' "store key mode 0644: refused" \
	keyctl export bob@b.test --private
chmod 600 "$T/store.key"

# cables-milter -n.
expect 0 'configuration OK' "milter -n: good configuration" "$MILTER" -n -c "$CONF"
expect 1 "$T/bad.conf:2: unknown key 'Ciper'" "milter -n: bad key, file:line" "$MILTER" -n -c "$T/bad.conf"
printf 'KeyStore %s/x.db\n' "$T" > "$T/nolocal.conf"
expect 1 'LocalDomains is not set' "milter -n: LocalDomains required" "$MILTER" -n -c "$T/nolocal.conf"
printf 'LocalDomains a.test\nKeyStore %s/x.db\nTempDir %s/nonexistent\n' "$T" "$T" > "$T/notmp.conf"
expect 1 'TempDir .* is not a writable directory' "milter -n: TempDir checked" "$MILTER" -n -c "$T/notmp.conf"
printf 'LocalDomains a.test\nKeyStore %s/x.db\nSocketGroup no-such-group\n' "$T" > "$T/nogroup.conf"
expect 1 'SocketGroup no-such-group: no such group' "milter -n: SocketGroup checked" "$MILTER" -n -c "$T/nogroup.conf"
expect 2 '^usage: cables-milter' "milter -x: usage, exit 2" "$MILTER" -x
# OpenPGP keys: generate, export, import (armored and binary, public and secret), show, delete.
P=$T/pgp
mkdir -p "$P"
printf 'KeyStore %s/keys.db\nKeyStoreKey %s/store.key\nTempDir %s\n' "$P" "$P" "$P" > "$P/conf"
expect 0 '^generated OpenPGP key for dan@d.test: ed25519/cv25519, fingerprint [0-9a-f]\{40\}, expires ' \
	"generate --pgp: ed25519/cv25519 by default" keyctl generate dan@d.test --pgp
expect 0 'rsa3072/rsa3072, fingerprint [0-9a-f]\{40\}, expires ' "generate --pgp --algo rsa3072" \
	keyctl generate erin@d.test --pgp --algo rsa3072 --days 10
expect 0 '^dan@d.test  *pgp  *[0-9a-f]\{16\} .* generated  *yes$' "list shows the OpenPGP key and its secret" keyctl list
expect 0 '^can:         encrypt, sign$' "show: capabilities" keyctl show dan@d.test
expect 0 '^key:         ed25519/cv25519$' "show: algorithms" keyctl show dan@d.test
keyctl export dan@d.test > "$P/dan.asc"
keyctl export dan@d.test --private --out "$P/dan.sec"
check "export: an armored public key, no secret" sh -c \
	"grep -q 'BEGIN PGP PUBLIC KEY BLOCK' $P/dan.asc && ! grep -q 'PRIVATE KEY' $P/dan.asc"
check "export --private: the armored secret key, mode 0600" sh -c \
	"grep -q 'BEGIN PGP PRIVATE KEY BLOCK' $P/dan.sec && test \$(stat -c %a $P/dan.sec) = 600"
check "keyctl leaves no GnuPG home behind in TempDir" sh -c "! ls -d $T/cables-gpg.* $P/cables-gpg.* 2>/dev/null"
# The throw-away home holds the unsealed secret for a moment (issue 14): removed on every way out.
# A failure after gpg made the key: KeyStoreKey cannot be read or made (a directory stands there).
mkdir -p "$P/fail/store.key"
printf 'KeyStore %s/fail/keys.db\nKeyStoreKey %s/fail/store.key\nTempDir %s/fail\n' "$P" "$P" "$P" > "$P/fail.conf"
expect 1 'store.key' "generate --pgp failing after gpg made the key (KeyStoreKey is a directory): exit 1" \
	"$KEYCTL" -c "$P/fail.conf" generate fay@d.test --pgp
check "... leaves no GnuPG home behind" sh -c "! ls -d $P/fail/cables-gpg.* 2>/dev/null"
expect 1 '' "import of a secret key failing after gpg read it (KeyStoreKey is a directory): exit 1" \
	"$KEYCTL" -c "$P/fail.conf" import "$P/dan.sec"
check "... leaves no GnuPG home behind" sh -c "! ls -d $P/fail/cables-gpg.* 2>/dev/null"
# A TempDir too long for a GnuPG home (63 characters): refused, and neither it nor what it holds removed
# (the throw-away home's name was once kept, truncated, and removed at exit: the TempDir itself).
long=$P/long/$(printf '%0*d' $((62 - ${#P} - 6)) 0)
mkdir -p "$long/sub" && : > "$long/kept"
printf 'KeyStore %s/long.db\nKeyStoreKey %s/long.key\nTempDir %s\n' "$P" "$P" "$long" > "$P/long.conf"
expect 1 'too long for a GnuPG home' "generate --pgp with a TempDir too long for a GnuPG home: exit 1, says why" \
	"$KEYCTL" -c "$P/long.conf" generate lee@d.test --pgp
check "... and the TempDir and what it holds are still there" test -f "$long/kept" -a -d "$long/sub"
# A signal that ends keyctl while gpg makes a key: held until the home is gone, then it takes effect.
mkdir -p "$P/sig"
printf 'KeyStore %s/sig/keys.db\nKeyStoreKey %s/sig/store.key\nTempDir %s/sig\n' "$P" "$P" "$P" > "$P/sig.conf"
for sig in TERM HUP; do
	"$KEYCTL" -c "$P/sig.conf" generate "sig-$sig@d.test" --pgp --algo rsa3072 > /dev/null 2>&1 &
	pid=$!
	if wait_for 20 sh -c "ls -d $P/sig/cables-gpg.* 2>/dev/null"; then
		kill -"$sig" "$pid"
		wait "$pid"
		rc=$?
		check "SIG$sig while the throw-away home exists: no GnuPG home left behind" \
			sh -c "! ls -d $P/sig/cables-gpg.* 2>/dev/null"
		# 128 + the signal's number when it ended keyctl; 0 when gpg had finished just before it arrived.
		check "SIG$sig: keyctl ended by it (or had finished), exit $rc" \
			test "$rc" = $((128 + $(kill -l "$sig"))) -o "$rc" = 0
	else
		wait "$pid"
		not_ok "SIG$sig: the throw-away home was never seen in TempDir"
	fi
done
# TempDir another user owns (the milter's spool): they could rename the home and put a link to a
# directory of theirs in its place while gpg writes the secret; the home is made in /tmp instead.
mkdir -p "$P/theirs" && chown nobody "$P/theirs" && chmod 755 "$P/theirs"
printf 'KeyStore %s/theirs.db\nKeyStoreKey %s/theirs.key\nTempDir %s/theirs\n' "$P" "$P" "$P" > "$P/theirs.conf"
if command -v strace >/dev/null 2>&1; then
	# LeakSanitizer cannot run under ptrace (the sanitizer build): leaks are looked for everywhere else.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=mkdir,mkdirat -o "$P/mkdir.trace" "$KEYCTL" -c "$P/theirs.conf" generate ted@d.test --pgp \
		> "$P/theirs.out" 2>&1
	check "TempDir owned by another user: generate --pgp still works" grep -q 'generated OpenPGP key for ted@d.test' "$P/theirs.out"
	check "... its throw-away home is made in /tmp (root's, sticky)" grep -q '"/tmp/cables-gpg\.' "$P/mkdir.trace"
	check "... never in that TempDir" sh -c "! grep -q '\"$P/theirs/' '$P/mkdir.trace'"
	check "... and is gone" sh -c "! grep -o '\"/tmp/cables-gpg\.[^\"]*' '$P/mkdir.trace' | tr -d '\"' | xargs ls -d 2>/dev/null | grep -q ."
else
	ok "# SKIP strace is not installed"
fi
expect 0 '^imported OpenPGP key for dan@d.test: fingerprint [0-9a-f]\{40\}$' "import an armored public key" \
	"$KEYCTL" -c "$P/conf" import "$P/dan.asc"
G=$P/g
gpg_home "$G"
gpg --homedir "$G" --batch -q --import "$P/dan.sec" 2>/dev/null
gpg --homedir "$G" --batch --export dan@d.test > "$P/dan.gpg"
gpgconf --homedir "$G" --kill all 2>/dev/null
expect 0 'imported OpenPGP key for dan@d.test' "import a binary public key" "$KEYCTL" -c "$P/conf" import "$P/dan.gpg"
printf 'KeyStore %s/k2.db\nKeyStoreKey %s/store2.key\nTempDir %s\n' "$P" "$P" "$P" > "$P/conf2"
expect 0 'imported OpenPGP key for dan@d.test: fingerprint [0-9a-f]\{40\}, with secret key' \
	"import an armored secret key" "$KEYCTL" -c "$P/conf2" import "$P/dan.sec"
expect 0 '^dan@d.test  *pgp  *[0-9a-f]\{16\} .* imported  *yes$' "the imported secret is in the store" \
	"$KEYCTL" -c "$P/conf2" list
expect 1 'nothing imported for x@y.test' "import --for another address: exit 1" \
	"$KEYCTL" -c "$P/conf2" import "$P/dan.asc" --for x@y.test
printf -- '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n' > "$P/bad.asc"
expect 1 'bad.asc: no OpenPGP key in the data' "import corrupt armor: exit 1 with the reason" \
	"$KEYCTL" -c "$P/conf2" import "$P/bad.asc"
expect 0 'deleted 1 key for erin@d.test' "delete an OpenPGP key" keyctl delete erin@d.test

rig_done
