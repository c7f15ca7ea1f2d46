/*
 * test_pgp_epoch - OpenPGP epoch subkeys (pgp_epoch.h): one made from a
 * gpg-made long-term key (Ed25519 and RSA primaries) checks, its secret is
 * the subkey's and reads as the keyholder reads secrets, and gpg itself
 * takes the binding (imported into a fresh home, the subkey is there, can
 * encrypt and expires when we said); a subkey gpg bound checks too.
 * Refused, each with its reason: another primary key, a foreign primary's
 * binding, a tampered subkey or signature, expired, not yet valid, valid
 * too long, signing flags, no expiry, two subkeys, a secret packet, a
 * repeated expiry or creation time.  In a home where gpg merged an epoch
 * key into the long-term key, each store row lists its own subkeys only.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "pgp.h"
#include "pgp_epoch.h"
#include "pgp_key.h"
#include "pgp_packet.h"

#define DAY 86400LL
#define T0 1800000000LL
#define MAXV (35 * DAY)

struct user {
	char home[64];
	char fpr[PGP_FPR_LEN + 1];
	struct buf pub, sec;
	struct pgp_keypkt primary;
	EVP_PKEY *key;
};

static struct user alice, mallory, rsa;

static int
user_make(struct user *u, const char *addr, enum pgp_algo algo)
{
	struct cables_err err;

	buf_init(&u->pub);
	buf_init(&u->sec);
	if (pgp_temp_home("/tmp", u->home, &err) != CABLES_OK ||
	    pgp_generate(u->home, addr, algo, 0, u->fpr, &err) != CABLES_OK ||
	    pgp_export(u->home, u->fpr, true, false, &u->sec, &err) != CABLES_OK ||
	    pgp_export(u->home, u->fpr, false, false, &u->pub, &err) != CABLES_OK ||
	    pgp_key_find((const uint8_t *)u->sec.data, u->sec.len, NULL, &u->primary, &err) != CABLES_OK ||
	    (u->key = pgp_key_private(&u->primary, &err)) == NULL) {
		fprintf(stderr, "setup %s: %s\n", addr, err.msg);
		return -1;
	}
	return 0;
}

static void
user_free(struct user *u)
{
	pgp_temp_home_remove(u->home);
	EVP_PKEY_free(u->key);
	buf_release(&u->pub);
	buf_release(&u->sec);
}

static int
setup(void **state)
{
	(void)state;
	return user_make(&alice, "alice@a.test", PGP_ALGO_ED25519) || user_make(&mallory, "mallory@m.test",
	    PGP_ALGO_ED25519) || user_make(&rsa, "rob@a.test", PGP_ALGO_RSA3072) ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	user_free(&alice);
	user_free(&mallory);
	user_free(&rsa);
	return 0;
}

/* An epoch key of u (signed by signer), made at T0 for a week and a day. */
static void
make(const struct user *u, const struct user *signer, struct buf *pub, struct pgp_epoch_info *info)
{
	uint8_t *secret;
	size_t secret_len;
	struct cables_err err;

	assert_int_equal(pgp_epoch_make((const uint8_t *)u->pub.data, u->pub.len, &signer->primary, signer->key, T0,
	    T0 + 8 * DAY, pub, &secret, &secret_len, info, &err), CABLES_OK);
	pgp_epoch_secret_free(secret, secret_len);
}

static cables_status
check(const struct buf *pub, const struct user *u, long long now, struct cables_err *err)
{
	struct pgp_epoch_info info;

	return pgp_epoch_check((const uint8_t *)pub->data, pub->len, (const uint8_t *)u->pub.data, u->pub.len, now, MAXV,
	    &info, err);
}

static void
test_make_and_check(void **state)
{
	const struct user *users[] = { &alice, &rsa };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const struct user *u = users[i];
		struct pgp_epoch_info info, got;
		struct buf pub;
		uint8_t *secret;
		size_t secret_len;
		struct pgp_keypkt k;
		struct cables_err err;
		EVP_PKEY *x;
		char lower[PGP_FPR_LEN + 1];

		assert_int_equal(pgp_epoch_make((const uint8_t *)u->pub.data, u->pub.len, &u->primary, u->key, T0,
		    T0 + 8 * DAY, &pub, &secret, &secret_len, &info, &err), CABLES_OK);
		assert_int_equal(pgp_epoch_check((const uint8_t *)pub.data, pub.len, (const uint8_t *)u->pub.data,
		    u->pub.len, T0 + DAY, MAXV, &got, &err), CABLES_OK);
		assert_string_equal(got.fpr, info.fpr);
		assert_string_equal(got.keyid, info.keyid);
		assert_int_equal(got.created, T0);
		assert_int_equal(got.not_after, T0 + 8 * DAY);
		for (size_t j = 0; j <= PGP_FPR_LEN; j++)
			lower[j] = (char)(u->fpr[j] >= 'A' && u->fpr[j] <= 'F' ? u->fpr[j] - 'A' + 'a' : u->fpr[j]);
		assert_string_equal(got.primary, lower);
		/* The secret is the subkey's, read as the keyholder reads it, and matches the public point. */
		assert_int_equal(pgp_key_find(secret, secret_len, info.keyid, &k, &err), CABLES_OK);
		assert_true(k.secret);
		assert_int_equal(k.algo, PGP_PK_ECDH);
		assert_int_equal(k.curve, PGP_CURVE_25519);
		assert_non_null(x = pgp_key_private(&k, &err));
		EVP_PKEY_free(x);
		/* The public form holds the subkey, without its secret. */
		assert_int_equal(pgp_key_find((const uint8_t *)pub.data, pub.len, info.keyid, &k, &err), CABLES_OK);
		assert_false(k.secret);
		pgp_epoch_secret_free(secret, secret_len);
		buf_release(&pub);
	}
}

/* gpg takes our binding: imported alone into a fresh home, the epoch subkey is valid, encrypts, expires as said. */
static void
test_gpg_accepts(void **state)
{
	struct pgp_epoch_info info;
	struct pgp_key_info ki;
	struct buf pub;
	struct cables_err err;
	char home[64], fprs[1][PGP_FPR_LEN + 1], cmd[512], want[PGP_FPR_LEN + 1];
	size_t n;
	uint8_t *secret;
	size_t secret_len;
	long long now = (long long)time(NULL);
	FILE *f;
	char line[512];
	bool seen = false;

	(void)state;
	assert_int_equal(pgp_epoch_make((const uint8_t *)alice.pub.data, alice.pub.len, &alice.primary, alice.key, now,
	    now + 8 * DAY, &pub, &secret, &secret_len, &info, &err), CABLES_OK);
	pgp_epoch_secret_free(secret, secret_len);
	assert_int_equal(pgp_temp_home("/tmp", home, &err), CABLES_OK);
	assert_int_equal(pgp_import(home, (const uint8_t *)pub.data, pub.len, fprs, 1, &n, &err), CABLES_OK);
	assert_int_equal(pgp_key_get(home, fprs[0], &ki, &err), CABLES_OK);
	assert_int_equal(ki.nsubkeys, 2);
	for (size_t j = 0; j <= PGP_FPR_LEN; j++)
		want[j] = (char)(info.fpr[j] >= 'A' && info.fpr[j] <= 'F' ? info.fpr[j] - 'A' + 'a' : info.fpr[j]);
	assert_true(strcmp(ki.subkeys[1], want) == 0 || strcmp(ki.subkeys[1], info.fpr) == 0);
	assert_true(ki.can_encrypt);
	pgp_key_info_release(&ki);
	/* gpg's own listing: the subkey, encryption only, with our expiry; nothing invalid. */
	snprintf(cmd, sizeof(cmd), "gpg --homedir %s --batch --with-colons --fixed-list-mode --list-keys 2>&1", home);
	assert_non_null(f = popen(cmd, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		char expect[128];

		if (strncmp(line, "sub:", 4) != 0)
			continue;
		snprintf(expect, sizeof(expect), ":%lld:%lld:", now, now + 8 * DAY);
		assert_non_null(strstr(line, expect));
		assert_true(line[4] == 'u' || line[4] == '-' || line[4] == 'f');
		assert_non_null(strcasestr(line, info.keyid));
		assert_non_null(strstr(line, ":e:"));
		seen = true;
	}
	pclose(f);
	assert_true(seen);
	pgp_temp_home_remove(home);
	buf_release(&pub);
}

static void
expect_refused(const struct buf *pub, const struct user *u, long long now, const char *why)
{
	struct cables_err err;

	err.msg[0] = '\0';
	assert_int_not_equal(check(pub, u, now, &err), CABLES_OK);
	if (strstr(err.msg, why) == NULL)
		fail_msg("refused for \"%s\", not \"%s\"", err.msg, why);
}

/* Where the first subkey packet of a transferable key starts. */
static size_t
first_subkey(const struct buf *b)
{
	struct pgp_packet_header h;
	size_t pos = 0;

	while (pos < b->len) {
		assert_int_equal(pgp_packet_header_read((const uint8_t *)b->data + pos, b->len - pos, &h, NULL), CABLES_OK);
		if (h.tag == 14)
			return pos;
		pos += h.header_len + h.body_len;
	}
	fail_msg("no subkey");
	return 0;
}

/*
 * pub with a subpacket (type, a 4-byte value) put first in the binding
 * signature's hashed area: a second key expiration time or creation time,
 * which GnuPG would read before ours (the signature no longer verifies:
 * the check must refuse the repetition before it looks).
 */
static void
with_subpacket(const struct buf *pub, uint8_t type, uint32_t value, struct buf *out)
{
	struct pgp_packet_header h;
	size_t pos = first_subkey(pub), hl;
	const uint8_t *b;
	uint8_t sub[6] = { 5, type, (uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8), (uint8_t)value };
	uint8_t head[3];
	size_t blen;

	assert_int_equal(pgp_packet_header_read((const uint8_t *)pub->data + pos, pub->len - pos, &h, NULL), CABLES_OK);
	pos += h.header_len + h.body_len;
	assert_int_equal(pgp_packet_header_read((const uint8_t *)pub->data + pos, pub->len - pos, &h, NULL), CABLES_OK);
	assert_int_equal(h.tag, 2);
	b = (const uint8_t *)pub->data + pos + h.header_len;
	hl = (size_t)b[4] << 8 | b[5];
	blen = h.body_len + sizeof(sub);
	assert_true(blen < 8384);
	buf_init(out);
	buf_append(out, pub->data, pos);
	head[0] = 0xc2;
	head[1] = blen < 192 ? (uint8_t)blen : (uint8_t)(((blen - 192) >> 8) + 192);
	head[2] = (uint8_t)(blen - 192);
	buf_append(out, head, blen < 192 ? 2 : 3);
	head[0] = (uint8_t)((hl + sizeof(sub)) >> 8);
	head[1] = (uint8_t)(hl + sizeof(sub));
	buf_append(out, b, 4);
	buf_append(out, head, 2);
	buf_append(out, sub, sizeof(sub));
	buf_append(out, b + 6, h.body_len - 6);
}

static void
test_refused(void **state)
{
	struct pgp_epoch_info info;
	struct buf pub, bad;
	size_t at;

	(void)state;
	make(&alice, &alice, &pub, &info);
	assert_int_equal(check(&pub, &alice, T0 + DAY, NULL), CABLES_OK);
	/* Another user's long-term key does not vouch for it. */
	expect_refused(&pub, &mallory, T0 + DAY, "is not the long-term key");
	/* Time. */
	expect_refused(&pub, &alice, T0 + 8 * DAY, "expired");
	expect_refused(&pub, &alice, T0 - DAY, "not valid yet");
	{
		struct cables_err err;
		struct pgp_epoch_info i2;

		assert_int_not_equal(pgp_epoch_check((const uint8_t *)pub.data, pub.len, (const uint8_t *)alice.pub.data,
		    alice.pub.len, T0 + DAY, 7 * DAY, &i2, &err), CABLES_OK);
		assert_non_null(strstr(err.msg, "no short-lived key"));
	}
	/* Every byte of the subkey and its binding signature matters. */
	at = pub.len - 1;
	buf_init(&bad);
	buf_append(&bad, pub.data, pub.len);
	bad.data[at] ^= 0x01;
	expect_refused(&bad, &alice, T0 + DAY, "does not verify");
	buf_release(&bad);
	buf_release(&pub);
	/* Alice's primary packet and user ID, bound by mallory's key. */
	make(&alice, &mallory, &pub, &info);
	expect_refused(&pub, &alice, T0 + DAY, "not issued by the long-term primary key");
	buf_release(&pub);
	/* Mallory's own epoch key offered for alice. */
	make(&mallory, &mallory, &pub, &info);
	expect_refused(&pub, &alice, T0 + DAY, "is not the long-term key");
	/* The long-term key itself (its encryption subkey does not expire) is no epoch key. */
	expect_refused(&alice.pub, &alice, T0 + DAY, "does not expire");
	buf_release(&pub);
	/* Two epoch subkeys of alice's, each well bound, are not one. */
	make(&alice, &alice, &pub, &info);
	buf_init(&bad);
	buf_append(&bad, pub.data, pub.len);
	at = first_subkey(&pub);
	buf_append(&bad, pub.data + at, pub.len - at);
	expect_refused(&bad, &alice, T0 + DAY, "one subkey with one binding signature (it has 2 and 2)");
	buf_release(&bad);
	/* A repeated key expiration time or creation time in the binding (GnuPG reads the first). */
	with_subpacket(&pub, 9, 365 * 86400, &bad);
	expect_refused(&bad, &alice, T0 + DAY, "repeated");
	buf_release(&bad);
	with_subpacket(&pub, 2, (uint32_t)T0, &bad);
	expect_refused(&bad, &alice, T0 + DAY, "repeated");
	buf_release(&bad);
	/* A secret packet is never part of one. */
	expect_refused(&alice.sec, &alice, T0 + DAY, "");
	buf_release(&pub);
}

/*
 * A subkey gpg added to alice's key (quick-add-key ALGO USAGE EXPIRY),
 * cut out as an epoch key: primary and user ID, then that subkey and its binding.
 */
static void
gpg_subkey(const char *algo, const char *usage, const char *expire, struct buf *out)
{
	struct buf exp;
	struct cables_err err;
	struct pgp_packet_header h;
	char cmd[512];
	size_t pos = 0, first_sub = 0, last_sub = 0;

	snprintf(cmd, sizeof(cmd), "gpg --homedir %s --batch --pinentry-mode loopback --passphrase '' --quick-add-key %s "
	    "%s %s %s 2>/dev/null", alice.home, alice.fpr, algo, usage, expire);
	assert_int_equal(system(cmd), 0);
	buf_init(&exp);
	assert_int_equal(pgp_export(alice.home, alice.fpr, false, false, &exp, &err), CABLES_OK);
	while (pos < exp.len) {
		assert_int_equal(pgp_packet_header_read((const uint8_t *)exp.data + pos, exp.len - pos, &h, NULL), CABLES_OK);
		if (h.tag == 14) {
			if (first_sub == 0)
				first_sub = pos;
			last_sub = pos;
		}
		pos += h.header_len + h.body_len;
	}
	buf_init(out);
	buf_append(out, exp.data, first_sub);
	buf_append(out, exp.data + last_sub, exp.len - last_sub);
	buf_release(&exp);
}

static void
test_gpg_made(void **state)
{
	struct buf pub;
	long long now = (long long)time(NULL);

	(void)state;
	gpg_subkey("cv25519", "encr", "7d", &pub);
	assert_int_equal(check(&pub, &alice, now + 60, NULL), CABLES_OK);
	buf_release(&pub);
	gpg_subkey("cv25519", "encr", "60d", &pub);
	expect_refused(&pub, &alice, now + 60, "no short-lived key");
	buf_release(&pub);
	gpg_subkey("cv25519", "encr", "never", &pub);
	expect_refused(&pub, &alice, now + 60, "does not expire");
	buf_release(&pub);
	gpg_subkey("ed25519", "sign", "7d", &pub);
	expect_refused(&pub, &alice, now + 60, "cannot encrypt");
	buf_release(&pub);
	gpg_subkey("rsa2048", "sign,encr", "7d", &pub);
	expect_refused(&pub, &alice, now + 60, "not encryption only");
	buf_release(&pub);
}

/*
 * In a shared home gpg merges an epoch key's public form into the
 * long-term key (same primary); each store row is still listed with its
 * own subkeys only, whichever was imported first: the long-term row never
 * names the epoch subkey (inbound mail for it is the epoch row's) nor
 * encrypts to it (an EncryptToSelf copy would go to a secret deleted
 * after grace).
 */
static void
test_rows_own_subkeys(void **state)
{
	struct pgp_epoch_info info;
	struct pgp_key_info lt, ep;
	struct buf pub;
	struct cables_err err;
	char home[64], lt_sub[PGP_FPR_LEN + 1];
	uint8_t *secret;
	size_t secret_len;
	long long now = (long long)time(NULL);

	(void)state;
	assert_int_equal(pgp_temp_home("/tmp", home, &err), CABLES_OK);
	assert_int_equal(pgp_inspect(home, (const uint8_t *)alice.pub.data, alice.pub.len, &lt, &err), CABLES_OK);
	assert_int_equal(lt.nsubkeys, 2);
	strlcpy_c(lt_sub, lt.subkeys[1], sizeof(lt_sub));
	assert_string_equal(lt.encrypt_fpr, lt_sub);
	pgp_key_info_release(&lt);
	assert_int_equal(pgp_epoch_make((const uint8_t *)alice.pub.data, alice.pub.len, &alice.primary, alice.key,
	    now, now + 8 * DAY, &pub, &secret, &secret_len, &info, &err), CABLES_OK);
	pgp_epoch_secret_free(secret, secret_len);
	assert_int_equal(pgp_inspect(home, (const uint8_t *)pub.data, pub.len, &ep, &err), CABLES_OK);
	assert_int_equal(ep.nsubkeys, 2);
	assert_string_equal(ep.subkeys[1], info.fpr);
	assert_string_equal(ep.encrypt_fpr, info.fpr);
	pgp_key_info_release(&ep);
	/* The long-term row's facts computed again (a restart, an eviction) after the merge. */
	pgp_cache_clear();
	assert_int_equal(pgp_inspect(home, (const uint8_t *)alice.pub.data, alice.pub.len, &lt, &err), CABLES_OK);
	assert_int_equal(lt.nsubkeys, 2);
	for (size_t i = 0; i < lt.nsubkeys; i++)
		assert_string_not_equal(lt.subkeys[i], info.fpr);
	assert_string_equal(lt.encrypt_fpr, lt_sub);
	pgp_key_info_release(&lt);
	assert_false(pgp_key_has(home, (const uint8_t *)alice.pub.data, alice.pub.len, info.fpr));
	pgp_temp_home_remove(home);
	buf_release(&pub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_and_check),
		cmocka_unit_test(test_gpg_accepts),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_gpg_made),
		cmocka_unit_test(test_rows_own_subkeys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
