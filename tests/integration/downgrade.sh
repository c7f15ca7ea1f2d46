#!/bin/sh
# No downgrade for domains that encrypt, and key-change alerts (issue 18),
# with a real Postfix, cables-keyd and nsd serving DNSSEC-signed zones:
# r.test publishes carol's SMIMEA, keyd remembers it as encrypting; the
# record withdrawn (zone re-signed, keyd's cache expired), mail to carol
# under policy encrypt is held back as under require, never sent in
# plaintext, and AdminAddress is told once (restart included); an address
# there that never had a key (proven absent) still gets plaintext;
# p.test, never seen, publishes a signed _cables-policy p=require: its
# keyless recipient is held back too, and p.test is remembered; an
# unsigned (i.test) _cables-policy is ignored, one unsigned in a signed
# zone (x.test, bogus) makes the lookup a tempfail; a pinned key that
# changes tells AdminAddress once with both fingerprints and the source,
# and a second change the same day is logged only; DowngradeMemory set
# short lets plaintext go again, and
# cables-keyctl encrypting lists and forgets remembered domains.
RIG_PORT=12890
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
SOCK=$T/keyd.sock
ADMIN=admin@a.test

# The remote domain r.test publishes its users' keys (made in a store of its own).
R=$T/r
dns_store "$R" r.test
for who in carol@r.test dave@r.test; do "$KEYCTL" -c "$R/conf" generate "$who" --smime >/dev/null; done
fpr_in() { "$KEYCTL" -c "$R/conf" show "$1" | sed -n 's/^fingerprint: \([0-9a-f]*\).*/\1/p'; }
r_zone() {
	dns_publish_zone r.test "$R/conf" 60 2>/dev/null
	dns_sign_zone r.test 20351231000000 20250101000000
}
# plain_zone NAME [LINE]: a zone without keys, plus LINE.
plain_zone() {
	printf '$ORIGIN %s.\n$TTL 300\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 60\n@ IN NS ns.%s.\nns IN A 127.0.0.1\n%s\n' \
		"$1" "$1" "$1" "$1" "${2:-}" > "$Z/$1.zone"
}
POLICY_TXT='_cables-policy IN TXT "v=cables1; p=require"'
r_zone
plain_zone p.test "$POLICY_TXT"
dns_sign_zone p.test 20351231000000 20250101000000
plain_zone n.test
dns_sign_zone n.test 20351231000000 20250101000000
# i.test: the statement in a zone no anchor covers (insecure).
plain_zone i.test "$POLICY_TXT"
cp "$Z/i.test.zone" "$Z/i.test.zone.signed"
# x.test: signed without a statement; one is slipped in afterwards, unsigned (bogus).
plain_zone x.test
dns_sign_zone x.test 20351231000000 20250101000000
echo "_cables-policy.x.test. 300 IN TXT \"v=cables1; p=require\"" >> "$Z/x.test.zone.signed"
ZONES="r.test p.test n.test i.test x.test"
# shellcheck disable=SC2086
dns_start_nsd "$DNSPORT" $ZONES
check "nsd serves the zones" test -n "$NSD_PID"
restart_nsd() {
	old_nsd=$NSD_PID
	dns_stop_nsd
	wait_for 10 sh -c "! kill -0 $old_nsd 2>/dev/null"
	# shellcheck disable=SC2086
	dns_start_nsd "$DNSPORT" $ZONES
}

rig_postfix
rig_sink
KEYD_CONF="KeydSocket $SOCK|Resolver 127.0.0.1@$DNSPORT|DNSSECTrustAnchor $T/anchors|LookupTimeout 2s|CacheMaxTTL 1s|CacheMinTTL 0s|KeyExchange no|AdminAddress $ADMIN|MailCommand /usr/sbin/sendmail -C $PF"
keyd_config() {	# [LINE]: the configuration, plus LINE
	extra=${1:-}
	old_ifs=$IFS
	IFS='|'
	# shellcheck disable=SC2086
	set -- $KEYD_CONF
	IFS=$old_ifs
	if [ -n "$extra" ]; then rig_config "$@" "$extra"; else rig_config "$@"; fi
}
keyd_config
rig_keyd
check "keyd listens" test -S "$SOCK"
rig_store_key
rig_milter
$MAILTOOL make "$T/plain.eml" plain
ask() { keyd_ask "$SOCK" "$@"; }
# notices SUBJECT-PATTERN: how many notices to AdminAddress with that subject reached the sink.
notices() {
	n=0
	for f in $(grep -l "^X-Rcpt-Args: <$ADMIN>" "$SINK"/* 2>/dev/null); do
		grep -q "^Subject: .*$1" "$f" && n=$((n + 1))
	done
	echo "$n"
}
# settled: nothing on its way through Postfix (a notice keyd handed to sendmail(1) has reached the sink).
settled() {
	[ "$(find "$PF/queue/maildrop" "$PF/queue/incoming" "$PF/queue/active" -type f 2>/dev/null | wc -l)" = 0 ]
}
to_sink() { grep -l "^X-Rcpt-Args: <$1>" "$SINK"/* 2>/dev/null | wc -l; }

# Seen encrypting: carol's key from signed DNS.
rig_send "$T/plain.eml" alice@a.test carol@r.test
check "carol, key in signed DNS: accepted" test $? = 0
if wire=$(capture); then
	check "carol's copy on the wire is S/MIME" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
else
	not_ok "carol's message delivered"
fi
keyctl encrypting > "$T/enc.out"
check "keyctl encrypting: r.test remembered, through dns-dnssec, not told yet" \
	grep -q '^r\.test  *dns-dnssec  *[0-9-]*  *[0-9-]*  *[0-9-]*  *-$' "$T/enc.out"
check "keyctl encrypting: nothing else remembered" test "$(grep -c '\.test ' "$T/enc.out")" = 1

# r.test withdraws carol's SMIMEA; the zone is re-signed and keyd's cache (1 s) runs out.
"$KEYCTL" -c "$R/conf" delete carol@r.test >/dev/null
r_zone
restart_nsd
sleep 1.1
ask request=lookup address=carol@r.test
check "keyd: carol's key withdrawn (NSEC), her domain remembered as encrypting" \
	grep -q '^result=carol@r.test none encrypting=remembered since=[0-9]* reason=.*NSEC' "$T/reply"
wait_for 30 sh -c "[ \$(grep -l '^X-Rcpt-Args: <$ADMIN>' $SINK/* 2>/dev/null | wc -l) -ge 1 ]"
keyctl lookup carol@r.test > "$T/lookup.out" 2>&1
check "keyctl lookup: exit 1, and says carol gets no plaintext, and why" sh -c \
	"[ $? = 1 ] && grep -q '^carol@r.test: no plaintext: its domain is remembered as encrypting since [0-9-]* (DowngradeMemory)$' $T/lookup.out"
leaks_before=$(leaks r.test)
for i in 1 2; do
	rig_send "$T/plain.eml" alice@a.test carol@r.test
	check "withdrawn key, policy encrypt, message $i: 4xx as under require" test $? = 4
done
check "withdrawn key: the log says why (remembered since, require)" \
	grep -q 'tempfail: no usable .* for carol@r.test: .*r\.test is remembered as encrypting since [0-9-]* (DowngradeMemory) (policy require)' "$MILTER_LOG"
rig_submit "$T/plain.eml" alice@a.test carol@r.test
wait_for 30 sh -c "[ \$(grep -c 'r\.test is remembered as encrypting' $MILTER_LOG) -ge 3 ]"
check "withdrawn key, submitted with sendmail(1): it waits in the queue" test "$(queue_count)" -ge 1
# The held copy goes (pickup would retry it): later checks count what reaches the wire.
postsuper -c "$PF" -d ALL >/dev/null 2>&1
find "$PF/queue/maildrop" -type f -delete
check "nothing else on its way" wait_for 30 settled
check "withdrawn key: no plaintext on the wire" test "$(leaks r.test)" = "$leaks_before"
check "withdrawn key: keyd logs it once" test "$(grep -c 'r.test: remembered as encrypting since' "$T/milter.log")" = 1
check "withdrawn key: the administrator is told, once" test "$(notices 'r.test offers no encryption key')" = 1
notice=$(grep -l "^X-Rcpt-Args: <$ADMIN>" "$SINK"/* | head -n 1)
check "the notice: envelope sender <>, Auto-Submitted, names carol and how to forget" sh -c \
	"grep -q '^Auto-Submitted: auto-generated' $notice && grep -q 'carol@r.test' $notice &&
	 grep -q 'cables-keyctl encrypting forget r.test' $notice && grep -q 'from=<>' $PF/maillog"
keyctl encrypting > "$T/enc.out"
check "keyctl encrypting: r.test told" grep -q '^r\.test  *dns-dnssec .* [0-9][0-9-]*$' "$T/enc.out"
# A restart remembers what was told.
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
rig_keyd
rig_send "$T/plain.eml" alice@a.test carol@r.test
check "after keyd's restart: still 4xx" test $? = 4
wait_for 30 settled
check "after keyd's restart: still one notice" test "$(notices 'r.test offers no encryption key')" = 1

# At r.test, an address never seen with a key (DNSSEC proves it has none): r.test's own word, plaintext
# under encrypt, so that a domain that gives keys to some users only stays usable for the others.
ask request=lookup address=nemo@r.test
check "keyd: nemo@r.test never had a key: no encrypting=" sh -c \
	"grep -q '^result=nemo@r.test none reason=.*NSEC' $T/reply && ! grep -q encrypting= $T/reply"
rig_send "$T/plain.eml" alice@a.test nemo@r.test
check "remembered domain, an address that never had a key: accepted" test $? = 0
if wire=$(capture); then
	check "remembered domain, an address that never had a key: sent as it is" grep -q PLAINTEXT-MARKER "$wire"
else
	not_ok "nemo's message delivered"
fi
# Never seen, nothing published: plaintext under encrypt (the control).
rig_send "$T/plain.eml" alice@a.test nick@n.test
check "never-seen keyless domain: accepted" test $? = 0
if wire=$(capture); then
	check "never-seen keyless domain: sent as it is" grep -q PLAINTEXT-MARKER "$wire"
else
	not_ok "nick's message delivered"
fi
# p.test publishes a signed _cables-policy p=require.
ask request=lookup address=pat@p.test
check "keyd: p.test's signed _cables-policy says encrypting=published" \
	grep -q '^result=pat@p.test none encrypting=published reason=' "$T/reply"
rig_send "$T/plain.eml" alice@a.test pat@p.test
check "_cables-policy p=require, never seen: 4xx as under require" test $? = 4
check "_cables-policy p=require: the log says why" \
	grep -q 'tempfail: no usable .* for pat@p.test: .*p\.test publishes _cables-policy p=require (policy require)' "$MILTER_LOG"
check "_cables-policy p=require: nothing on the wire for p.test" test "$(to_sink pat@p.test)" = 0
# An unsigned statement (insecure zone) counts for nothing.
ask request=lookup address=ida@i.test
check "keyd: i.test's unsigned _cables-policy is ignored" sh -c \
	"grep -q '^result=ida@i.test none' $T/reply && ! grep -q encrypting= $T/reply"
rig_send "$T/plain.eml" alice@a.test ida@i.test
check "unsigned _cables-policy at i.test: plaintext under encrypt as before" test $? = 0
if wire=$(capture); then
	check "unsigned _cables-policy at i.test: sent as it is" grep -q PLAINTEXT-MARKER "$wire"
else
	not_ok "ida@i.test's message delivered"
fi
# One slipped into a signed zone (bogus: what stripping the genuine statement's signatures looks like)
# leaves keyd unable to tell: a tempfail, never plaintext, though the key's absence is proven.
ask request=lookup address=ida@x.test
check "keyd: x.test's bogus _cables-policy: tempfail" \
	grep -q '^result=ida@x.test tempfail reason=_cables-policy.x.test: bogus answer' "$T/reply"
leaks_before=$(leaks x.test)
rig_send "$T/plain.eml" alice@a.test ida@x.test
check "bogus _cables-policy at x.test: 4xx" test $? = 4
check "bogus _cables-policy at x.test: no plaintext on the wire" test "$(leaks x.test)" = "$leaks_before"
check "x.test's slipped-in statement is bogus, and keyd says so" \
	grep -q '_cables-policy.x.test: bogus answer: cannot tell whether x.test publishes p=require' "$T/milter.log" ||
	diag "$(grep -i 'cables-policy' "$T/milter.log" | tail -n 3)"
# A signed p=require is remembered, so that a later failed lookup there is covered.
keyctl encrypting > "$T/enc.out"
check "keyctl encrypting: p.test remembered through its policy" grep -q '^p\.test  *policy ' "$T/enc.out"

# Key change: dave's pinned key replaced in DNS; the administrator hears once, with both fingerprints.
ask request=lookup address=dave@r.test
old_dave=$(fpr_in dave@r.test)
check "dave's key found in signed DNS and pinned" grep -q "fingerprint=$old_dave" "$T/reply"
"$KEYCTL" -c "$R/conf" delete dave@r.test >/dev/null
"$KEYCTL" -c "$R/conf" generate dave@r.test --smime >/dev/null
new_dave=$(fpr_in dave@r.test)
r_zone
restart_nsd
for i in 1 2; do
	sleep 1.1
	ask request=lookup address=dave@r.test
	check "key change, lookup $i: the new key (On-KeyChange accept)" grep -q "fingerprint=$new_dave" "$T/reply"
done
check "key change: the administrator is told" wait_for 30 sh -c "[ \$(grep -l '^Subject: .*key of dave@r.test changed' $SINK/* 2>/dev/null | wc -l) -ge 1 ]"
wait_for 30 settled
check "key change: told once" test "$(notices 'key of dave@r.test changed')" = 1
alert=$(grep -l '^Subject: .*key of dave@r.test changed' "$SINK"/* | head -n 1)
check "key change alert: the old and the new fingerprint, and where the new key came from" sh -c \
	"grep -q 'pinned (old): $old_dave' $alert && grep -q 'offered (new): $new_dave (from dns-dnssec)' $alert"
# Changed again the same day: logged, not mailed (one key change alert per domain a day).
"$KEYCTL" -c "$R/conf" delete dave@r.test >/dev/null
"$KEYCTL" -c "$R/conf" generate dave@r.test --smime >/dev/null
newer_dave=$(fpr_in dave@r.test)
r_zone
restart_nsd
sleep 1.1
ask request=lookup address=dave@r.test
check "second key change: the newer key" grep -q "fingerprint=$newer_dave" "$T/reply"
check "second key change at r.test within a day: logged, not mailed" \
	grep -q "dave@r.test: key change .* not mailed" "$T/milter.log"
wait_for 30 settled
check "second key change: still one alert" test "$(notices 'key of dave@r.test changed')" = 1

# DowngradeMemory set short: r.test's memory (last refreshed with carol's key) runs out.
reloads=$(grep -c 'configuration reloaded' "$MILTER_LOG")
keyd_config "DowngradeMemory 1s"
kill -HUP "$KEYD_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -gt $reloads ]"
# The memory runs out only while nobody there offers a key: dave's goes too.
"$KEYCTL" -c "$R/conf" delete dave@r.test >/dev/null
r_zone
restart_nsd
sleep 2.1
rig_send "$T/plain.eml" alice@a.test carol@r.test
check "DowngradeMemory passed: plaintext under encrypt again" test $? = 0
if wire=$(capture); then
	check "DowngradeMemory passed: sent as it is" grep -q PLAINTEXT-MARKER "$wire"
else
	not_ok "carol's message delivered after DowngradeMemory"
fi
# Back to 90 days: remembered again; cables-keyctl encrypting forget lets plaintext go.
reloads=$(grep -c 'configuration reloaded' "$MILTER_LOG")
keyd_config
kill -HUP "$KEYD_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -gt $reloads ]"
rig_send "$T/plain.eml" alice@a.test carol@r.test
check "DowngradeMemory 90d again: 4xx" test $? = 4
keyctl encrypting forget r.test > "$T/forget.out" 2>&1
check "keyctl encrypting forget r.test: exit 0, says what follows" sh -c "[ $? = 0 ] && grep -q '^forgot r.test' $T/forget.out"
keyctl encrypting forget r.test > "$T/forget.out" 2>&1
check "keyctl encrypting forget of a domain not remembered: exit 1, says so" sh -c \
	"[ $? = 1 ] && grep -q 'r.test is not remembered as encrypting' $T/forget.out"
rig_send "$T/plain.eml" alice@a.test carol@r.test
check "forgotten: plaintext under encrypt" test $? = 0
keyctl publish --dns > "$T/publish.out" 2>&1
check "publish --dns: no _cables-policy while a.test's policy is encrypt" sh -c "! grep -q _cables-policy $T/publish.out"
keyctl generate alice@a.test --smime >/dev/null
echo "Policy a.test require" >> "$CONF"
keyctl publish --dns > "$T/publish.out" 2>&1
check "publish --dns: a.test under require gets its _cables-policy TXT" \
	grep -q '^_cables-policy\.a\.test\. IN TXT "v=cables1; p=require"$' "$T/publish.out"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
rig_done
