/*
 * test_epoch - epoch keys (doc/key-exchange.md, "Forward secrecy: epoch
 * keys"): when they are made and deleted (a fixed clock moved by hand),
 * what an epoch certificate binds, that inbound mail encrypted to one is
 * decrypted, and that a deleted one leaves no bytes in the SQLite files.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "dispatch.h"
#include "epoch.h"
#include "epochkeys.h"
#include "helpers.h"
#include "inbound.h"
#include "keydclient.h"
#include "keys.h"
#include "mime.h"
#include "pgp.h"
#include "pgp_epoch.h"
#include "seal.h"
#include "smime.h"

#define NOW 1790000000LL
#define DAY 86400LL

static const struct epoch_times week = { 7 * DAY, 6 * DAY };	/* the defaults */
static X509 *bob_cert;
static EVP_PKEY *bob_key;

static int
group_setup(void **state)
{
	(void)state;
	mime_init();
	return smime_generate("bob@a.test", SMIME_ALGO_RSA3072, 365, (time_t)NOW, &bob_cert, &bob_key, NULL) ==
	    CABLES_OK ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(bob_cert);
	EVP_PKEY_free(bob_key);
	return 0;
}

static struct key_record
epoch_row(const char *format, long long not_before, long long not_after)
{
	struct key_record r;

	memset(&r, 0, sizeof(r));
	strlcpy_c(r.format, format, sizeof(r.format));
	r.not_before = not_before;
	r.not_after = not_after;
	return r;
}

static void
test_plan_makes_and_deletes_on_time(void **state)
{
	const long long overlap = DAY, life = 8 * DAY;	/* a key is valid lifetime + overlap */
	const struct {
		const char *what;
		long long now;
		bool make;
		size_t doomed;
	} cases[] = {
		{ "one current key, fresh", NOW + 1, false, 0 },
		{ "just before its overlap", NOW + life - overlap - 1, false, 0 },
		{ "in its overlap: the next is due", NOW + life - overlap, true, 0 },
		{ "expired, within grace", NOW + life + 6 * DAY - 1, true, 0 },
		{ "expired and graced: deleted", NOW + life + 6 * DAY, true, 1 },
		{ "a clock set back before it began", NOW - 10, true, 0 },
	};
	struct key_record rows[2] = { epoch_row("smime", NOW, NOW + life), epoch_row("pgp", NOW, NOW + 100 * DAY) };
	struct key_list list = { rows, 2 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct epoch_plan p;

		epoch_plan_make(&list, "smime", cases[i].now, &week, &p);
		if (p.make != cases[i].make || p.ndoomed != cases[i].doomed)
			fail_msg("%s: make %d doomed %zu", cases[i].what, p.make, p.ndoomed);
		if (p.make) {
			assert_int_equal(p.not_before, cases[i].now);
			assert_int_equal(p.not_after, cases[i].now + 7 * DAY + overlap);
		}
		if (p.ndoomed == 1)
			assert_int_equal(p.doomed[0], 0);	/* the pgp row is another format's business */
		epoch_plan_release(&p);
	}
}

static void
test_plan_without_keys_makes_one(void **state)
{
	struct key_list none = { NULL, 0 };
	struct epoch_plan p;

	epoch_plan_make(&none, "smime", NOW, &week, &p);
	assert_true(p.make);
	assert_int_equal(p.ndoomed, 0);
	epoch_plan_release(&p);
}

struct events {
	size_t made, deleted, failed, ignored;
	char last_fpr[65];
	char deleted_fpr[65];
	char why[CABLES_ERR_MAX];
};

static void
count_event(void *arg, enum epochkeys_event ev, const char *address, const char *fpr, long long when, const char *why)
{
	struct events *e = arg;

	(void)address;
	(void)when;
	if (ev == EPOCHKEYS_MADE)
		e->made++;
	else if (ev == EPOCHKEYS_DELETED) {
		e->deleted++;
		strlcpy_c(e->deleted_fpr, fpr, sizeof(e->deleted_fpr));
	}
	else if (ev == EPOCHKEYS_IGNORED) {
		e->ignored++;
		return;
	} else {
		e->failed++;
		strlcpy_c(e->why, why, sizeof(e->why));
	}
	strlcpy_c(e->last_fpr, fpr, sizeof(e->last_fpr));
}

static void
maintain(struct milter_fixture *fx, long long now, struct events *ev)
{
	struct epochkeys_env e = { fx->ks, fx->seal_key, &fx->cfg->local_domains, week, count_event, ev };
	struct epochkeys_counts n;
	struct cables_err err = { "" };

	memset(ev, 0, sizeof(*ev));
	if (epochkeys_maintain(&e, now, &n, &err) != CABLES_OK)
		fail_msg("epochkeys_maintain: %s", err.msg);
	if (ev->failed > 0)
		fail_msg("an epoch key failed: %s", ev->why);
	assert_int_equal(n.made, ev->made);
	assert_int_equal(n.deleted, ev->deleted);
}

/* The epoch keys of addr in the store, with their data. */
static struct key_list
epochs_of(struct milter_fixture *fx, const char *addr)
{
	struct key_list l;

	assert_int_equal(keystore_epoch_list(fx->ks, addr, true, &l, NULL), CABLES_OK);
	return l;
}

static void
test_rotation_over_weeks(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_list l;
	char first[65];

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 1);
	strlcpy_c(first, ev.last_fpr, sizeof(first));
	maintain(fx, NOW + 6 * DAY, &ev);		/* not yet in its overlap */
	assert_int_equal(ev.made, 0);
	maintain(fx, NOW + 7 * DAY, &ev);		/* a week on: the next one */
	assert_int_equal(ev.made, 1);
	assert_string_not_equal(ev.last_fpr, first);
	maintain(fx, NOW + 7 * DAY + 60, &ev);		/* and only one */
	assert_int_equal(ev.made + ev.deleted, 0);
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 2);
	assert_int_equal(l.items[0].not_after, NOW + 15 * DAY);	/* newest first */
	assert_int_equal(l.items[1].not_after, NOW + 8 * DAY);
	assert_string_equal(l.items[1].fingerprint, first);
	key_list_release(&l);
	/* The first expires at +8d and goes 6 days later, not a second sooner. */
	maintain(fx, NOW + 14 * DAY - 1, &ev);
	assert_int_equal(ev.deleted, 0);
	maintain(fx, NOW + 14 * DAY, &ev);
	assert_int_equal(ev.deleted, 1);
	assert_string_equal(ev.deleted_fpr, first);
	assert_int_equal(ev.made, 1);		/* the second entered its overlap at +14d */
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 2);
	for (size_t i = 0; i < l.count; i++)
		assert_string_not_equal(l.items[i].fingerprint, first);
	key_list_release(&l);
	milter_fixture_free(fx);
}

/* The epoch key keyd may serve for addr at now (KH_OP_EPOCH_CURRENT): its certificate's digest, or all zeros. */
static void
current_of(struct milter_fixture *fx, const char *addr, long long now, struct events *ev, uint8_t digest[32])
{
	struct epochkeys_env e = { fx->ks, fx->seal_key, &fx->cfg->local_domains, week, count_event, ev };
	bool found;

	memset(digest, 0, 32);
	memset(ev, 0, sizeof(*ev));
	assert_int_equal(epochkeys_current(&e, addr, now, digest, &found, NULL), CABLES_OK);
	if (!found)
		memset(digest, 0, 32);
}

/* The SHA-256 of the DER of the epoch row of addr with fingerprint fpr. */
static void
digest_of(struct milter_fixture *fx, const char *addr, const char *fpr, uint8_t digest[32])
{
	struct key_list l = epochs_of(fx, addr);
	bool seen = false;

	for (size_t i = 0; i < l.count; i++)
		if (strcmp(l.items[i].fingerprint, fpr) == 0) {
			SHA256(l.items[i].public_data, l.items[i].public_len, digest);
			seen = true;
		}
	key_list_release(&l);
	assert_true(seen);
}

/*
 * A compromised milter can write keys.db, and have bob's long-term key
 * sign any digest: an epoch certificate for a key of its own, issued by
 * bob's certificate, stored as an epoch row expiring late.  Without
 * KeyStoreKey it cannot seal the private key, so the keyholder neither
 * names that row to keyd nor lets it stop the rotation.  The plants: a
 * garbage seal; a genuine row's seal and fingerprint with the forged
 * certificate; a correct seal of a key that is not the certificate's.
 */
static void
test_a_planted_epoch_row_is_neither_served_nor_counted(void **state)
{
	enum { GARBAGE, COPIED_SEAL, OTHER_KEY, NPLANTS };
	static const char *const what[NPLANTS] = { "a garbage seal", "a genuine row's seal", "another key's seal" };

	for (int plant = 0; plant < NPLANTS; plant++) {
		struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
		struct events ev;
		struct key_list l;
		struct key_record r;
		uint8_t genuine[32], got[32], forged_digest[32], *der = NULL;
		size_t der_len = 0;
		char genuine_fpr[65];
		X509 *forged, *other;
		EVP_PKEY *forged_key, *other_key;

		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		maintain(fx, NOW, &ev);
		assert_int_equal(ev.made, 1);
		strlcpy_c(genuine_fpr, ev.last_fpr, sizeof(genuine_fpr));
		digest_of(fx, "bob@a.test", genuine_fpr, genuine);
		/* What the milter gets: bob's long-term key's signature on a certificate of its own. */
		assert_int_equal(smime_epoch_issue(bob_cert, bob_key, "bob@a.test", NOW, NOW + 40 * DAY, &forged,
		    &forged_key, NULL), CABLES_OK);
		assert_int_equal(smime_epoch_issue(bob_cert, bob_key, "bob@a.test", NOW, NOW + 40 * DAY, &other,
		    &other_key, NULL), CABLES_OK);
		memset(&r, 0, sizeof(r));
		r.address = (char *)"bob@a.test";
		strcpy(r.format, "smime");
		r.source = (char *)KEYSTORE_EPOCH_SOURCE;
		r.public_data = smime_cert_to_der(forged, &r.public_len);
		SHA256(r.public_data, r.public_len, forged_digest);
		smime_cert_fingerprint(forged, r.fingerprint);
		r.not_before = NOW;
		r.not_after = NOW + 40 * DAY;
		l = epochs_of(fx, "bob@a.test");
		if (plant == GARBAGE) {
			r.secret_data = (uint8_t *)xstrdup("garbage, not sealed with KeyStoreKey");
			r.secret_len = strlen((char *)r.secret_data);
		} else if (plant == COPIED_SEAL) {
			r.secret_data = xmalloc(l.items[0].secret_len);
			memcpy(r.secret_data, l.items[0].secret_data, l.items[0].secret_len);
			r.secret_len = l.items[0].secret_len;
			strlcpy_c(r.fingerprint, genuine_fpr, sizeof(r.fingerprint));
		} else {
			/* Sealed right (as if the store key leaked a seal of a key of its choosing): not the certificate's key. */
			assert_int_equal(smime_key_to_der(other_key, &der, &der_len, NULL), CABLES_OK);
			assert_int_equal(seal_close(fx->seal_key, r.fingerprint, der, der_len, &r.secret_data,
			    &r.secret_len, NULL), CABLES_OK);
			seal_free_secret(der, der_len);
		}
		key_list_release(&l);
		if (plant == COPIED_SEAL)
			assert_int_equal(keystore_delete(fx->ks, "bob@a.test", genuine_fpr, &der_len, NULL), CABLES_OK);
		assert_int_equal(keystore_put(fx->ks, &r, (time_t)NOW, NULL), CABLES_OK);
		free(r.public_data);
		free(r.secret_data);

		current_of(fx, "bob@a.test", NOW + 60, &ev, got);
		if (memcmp(got, forged_digest, 32) == 0)
			fail_msg("%s: the planted epoch certificate is named for keyd to serve", what[plant]);
		assert_int_equal(ev.ignored, 1);
		if (plant != COPIED_SEAL)
			assert_memory_equal(got, genuine, 32);	/* the genuine one still is */
		/* A week on the genuine one is in its overlap: the planted one, expiring later, does not stop the next. */
		maintain(fx, NOW + 7 * DAY, &ev);
		if (ev.made != 1)
			fail_msg("%s: no new epoch key a week on (%zu made)", what[plant], ev.made);
		assert_int_equal(ev.ignored, 1);
		current_of(fx, "bob@a.test", NOW + 7 * DAY + 60, &ev, got);
		digest_of(fx, "bob@a.test", ev.last_fpr[0] != '\0' ? ev.last_fpr : genuine_fpr, genuine);
		assert_memory_not_equal(got, forged_digest, 32);
		X509_free(forged);
		X509_free(other);
		EVP_PKEY_free(forged_key);
		EVP_PKEY_free(other_key);
		milter_fixture_free(fx);
	}
}

/*
 * A long-term row the milter plants for bob (a certificate of its own,
 * expiring later than bob's, a junk seal) is not taken for bob's current
 * certificate: the genuine epoch key is still the one named to keyd, and
 * no epoch key is issued under the planted row.
 */
static void
test_a_planted_long_term_row_is_no_parent(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_record r;
	uint8_t genuine[32], got[32];
	char genuine_fpr[65];
	X509 *mallory_cert;
	EVP_PKEY *mallory_key;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 1);
	strlcpy_c(genuine_fpr, ev.last_fpr, sizeof(genuine_fpr));
	digest_of(fx, "bob@a.test", genuine_fpr, genuine);
	assert_int_equal(smime_generate("bob@a.test", SMIME_ALGO_P256, 700, (time_t)NOW, &mallory_cert, &mallory_key,
	    NULL), CABLES_OK);
	memset(&r, 0, sizeof(r));
	r.address = (char *)"bob@a.test";
	strcpy(r.format, "smime");
	r.source = (char *)"import";
	r.public_data = smime_cert_to_der(mallory_cert, &r.public_len);
	smime_cert_fingerprint(mallory_cert, r.fingerprint);
	r.secret_data = (uint8_t *)xstrdup("junk, not sealed with KeyStoreKey");
	r.secret_len = strlen((char *)r.secret_data);
	r.not_before = NOW;
	r.not_after = NOW + 700 * DAY;
	assert_int_equal(keystore_put(fx->ks, &r, (time_t)NOW, NULL), CABLES_OK);
	free(r.public_data);
	free(r.secret_data);
	current_of(fx, "bob@a.test", NOW + 60, &ev, got);
	assert_memory_equal(got, genuine, 32);
	maintain(fx, NOW + 60, &ev);
	assert_int_equal(ev.made, 0);
	X509_free(mallory_cert);
	EVP_PKEY_free(mallory_key);
	milter_fixture_free(fx);
	(void)state;
}

/*
 * bob's long-term certificate replaced: the epoch key its predecessor
 * issued is no longer served nor counted as current (senders would refuse
 * it: it does not chain to what they are sent), a new one is made at the
 * next round, and the old one stays, for decryption, until its grace ends.
 */
static void
test_a_replaced_long_term_key_gets_a_new_epoch_key_at_once(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_list l;
	uint8_t old_digest[32], new_digest[32], got[32];
	char old_fpr[65];
	X509 *renewed;
	EVP_PKEY *renewed_key;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 1);
	strlcpy_c(old_fpr, ev.last_fpr, sizeof(old_fpr));
	digest_of(fx, "bob@a.test", old_fpr, old_digest);
	current_of(fx, "bob@a.test", NOW + 60, &ev, got);
	assert_memory_equal(got, old_digest, 32);
	/* A day later bob gets a new certificate (it expires later, so it is the current one). */
	assert_int_equal(smime_generate("bob@a.test", SMIME_ALGO_P256, 400, (time_t)(NOW + DAY), &renewed,
	    &renewed_key, NULL), CABLES_OK);
	milter_fixture_store(fx, "bob@a.test", renewed, renewed_key);
	current_of(fx, "bob@a.test", NOW + DAY + 60, &ev, got);
	assert_memory_equal(got, (uint8_t[32]){ 0 }, 32);	/* the old one is not served */
	assert_int_equal(ev.ignored, 0);			/* nor is it taken for a plant */
	maintain(fx, NOW + DAY + 60, &ev);
	assert_int_equal(ev.made, 1);				/* not a week later */
	digest_of(fx, "bob@a.test", ev.last_fpr, new_digest);
	current_of(fx, "bob@a.test", NOW + DAY + 120, &ev, got);
	assert_memory_equal(got, new_digest, 32);
	maintain(fx, NOW + DAY + 180, &ev);
	assert_int_equal(ev.made + ev.deleted, 0);
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 2);				/* the old one still decrypts */
	key_list_release(&l);
	maintain(fx, NOW + 8 * DAY + 6 * DAY, &ev);		/* until its grace ends */
	assert_int_equal(ev.deleted, 1);
	assert_string_equal(ev.deleted_fpr, old_fpr);
	X509_free(renewed);
	EVP_PKEY_free(renewed_key);
	milter_fixture_free(fx);
}

/*
 * An expired epoch row goes by its row id alone: one whose fingerprint
 * column is a prefix of bob's long-term certificate's (the milter can
 * write rows) takes nothing else with it.
 */
static void
test_an_expired_epoch_row_goes_alone(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_list l;
	struct key_record r;
	char lt_fpr[65];

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	smime_cert_fingerprint(bob_cert, lt_fpr);
	memset(&r, 0, sizeof(r));
	r.address = (char *)"bob@a.test";
	strcpy(r.format, "smime");
	strlcpy_c(r.fingerprint, lt_fpr, 9);
	r.public_data = smime_cert_to_der(bob_cert, &r.public_len);
	r.not_before = NOW - 30 * DAY;
	r.not_after = NOW - 20 * DAY;		/* long past expiry and grace */
	r.source = (char *)KEYSTORE_EPOCH_SOURCE;
	assert_int_equal(keystore_put(fx->ks, &r, (time_t)NOW, NULL), CABLES_OK);
	free(r.public_data);
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.deleted, 1);
	assert_int_equal(keystore_lookup(fx->ks, "bob@a.test", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);		/* the long-term key stays */
	assert_string_equal(l.items[0].fingerprint, lt_fpr);
	key_list_release(&l);
	milter_fixture_free(fx);
}

/* Epoch keys turned off (EpochKeyLifetime 0): none made, and those made before still deleted on time. */
static void
test_turned_off_makes_none_but_still_deletes(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct epoch_times off = { 0, week.grace };
	struct epochkeys_counts n;
	struct events ev;
	struct key_list l;
	struct epochkeys_env e = { fx->ks, fx->seal_key, &fx->cfg->local_domains, off, count_event, &ev };

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 1);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(epochkeys_maintain(&e, NOW + 8 * DAY + 6 * DAY - 1, &n, NULL), CABLES_OK);
	assert_int_equal(n.made + n.deleted, 0);
	assert_int_equal(epochkeys_maintain(&e, NOW + 8 * DAY + 6 * DAY, &n, NULL), CABLES_OK);
	assert_int_equal(n.made, 0);
	assert_int_equal(n.deleted, 1);
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 0);
	key_list_release(&l);
	milter_fixture_free(fx);
}

static void
test_no_epoch_key_without_a_usable_private_key(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	X509 *remote, *expired;
	EVP_PKEY *rkey, *ekey;
	struct events ev;

	assert_int_equal(smime_generate("dave@b.test", SMIME_ALGO_P256, 365, (time_t)NOW, &remote, &rkey, NULL),
	    CABLES_OK);
	assert_int_equal(smime_generate("carol@a.test", SMIME_ALGO_P256, 1, (time_t)(NOW - 2 * DAY), &expired,
	    &ekey, NULL), CABLES_OK);
	milter_fixture_store(fx, "bob@a.test", bob_cert, NULL);		/* no private key */
	milter_fixture_store(fx, "dave@b.test", remote, rkey);		/* not a local domain */
	milter_fixture_store(fx, "carol@a.test", expired, ekey);	/* expired */
	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 0);
	X509_free(remote);
	X509_free(expired);
	EVP_PKEY_free(rkey);
	EVP_PKEY_free(ekey);
	milter_fixture_free(fx);
}

/* What an epoch certificate says, who signed it, and that other code does not take it for a long-term key. */
static void
test_epoch_certificate_binds_address_and_long_term_key(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_list l, lt;
	X509 *c;
	struct cables_err err;
	char **emails;
	size_t n;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 1);
	assert_string_equal(l.items[0].source, KEYSTORE_EPOCH_SOURCE);
	assert_non_null(l.items[0].secret_data);
	c = smime_cert_from_der(l.items[0].public_data, l.items[0].public_len);
	assert_non_null(c);
	assert_int_equal(X509_verify(c, X509_get0_pubkey(bob_cert)), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(bob_cert)), 0);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(c)), EVP_PKEY_EC);
	assert_int_equal(X509_get_key_usage(c), KU_KEY_AGREEMENT);
	n = smime_cert_emails(c, &emails);
	assert_int_equal(n, 1);
	assert_string_equal(emails[0], "bob@a.test");
	smime_free_emails(emails, n);
	assert_int_equal(smime_cert_check(c, "bob@a.test", &fx->cfg->addr, (time_t)NOW, &err), CABLES_OK);
	assert_int_not_equal(smime_cert_check_signing(c, "bob@a.test", &fx->cfg->addr, (time_t)NOW, &err), CABLES_OK);
	X509_free(c);
	/* Long-term lookups and lists leave it out: no signing with it, no publishing of it as bob's key. */
	assert_int_equal(keystore_lookup(fx->ks, "bob@a.test", NULL, &lt, NULL), CABLES_OK);
	assert_int_equal(lt.count, 1);
	assert_string_not_equal(lt.items[0].fingerprint, l.items[0].fingerprint);
	key_list_release(&lt);
	assert_int_equal(keystore_list(fx->ks, false, &lt, NULL), CABLES_OK);
	assert_int_equal(lt.count, 1);
	key_list_release(&lt);
	key_list_release(&l);
	milter_fixture_free(fx);
}

static cables_status
spool_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

/* An inbound S/MIME message from alice@b.test to bob@a.test, encrypted to cert only. */
static struct message *
message_to(struct milter_fixture *fx, X509 *cert)
{
	static const char inner[] = "Content-Type: text/plain\r\n\r\nFor this week's key only.\r\n";
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_encrypt_opts o = { CIPHER_AES256_GCM, RSA_PAD_PKCS1 };
	struct byte_sink sink = { spool_write, m->body };
	struct entity_src src;

	message_set_queue_id(m, "QIDE");
	assert_true(message_add_rcpt(m, fx->cfg, "<bob@a.test>", NULL));
	message_add_header(m, "From", "Alice <alice@b.test>");
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&src);
	entity_src_mem(&src, inner, strlen(inner));
	sk_X509_push(certs, cert);
	assert_int_equal(smime_encrypt(&o, certs, &src, &sink, NULL), CABLES_OK);
	sk_X509_free(certs);
	return m;
}

static void
run_inbound(struct milter_fixture *fx, struct message *m, struct outcome *out)
{
	inbound_plan(m, &fx->env, out);
	if (out->verdict == VERDICT_CONTINUE)
		dispatch_eom(m, &fx->env, &fx->fake.mta, out);
}

/* Does the file at path hold needle anywhere?  A missing file holds nothing. */
static bool
file_holds(const char *path, const uint8_t *needle, size_t n)
{
	FILE *fp = fopen(path, "rb");
	struct buf b;
	char chunk[65536];
	size_t got;
	bool found = false;

	if (fp == NULL)
		return false;
	buf_init(&b);
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, got);
	fclose(fp);
	for (size_t i = 0; n <= b.len && i <= b.len - n && !found; i++)
		found = memcmp(b.data + i, needle, n) == 0;
	buf_release(&b);
	return found;
}

static void
test_inbound_decrypts_with_the_epoch_key_until_it_is_deleted(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct events ev;
	struct key_list l;
	struct outcome out;
	struct message *m;
	X509 *epoch;
	char *db = xasprintf("%s/keys.db", fx->dir), *wal = xasprintf("%s/keys.db-wal", fx->dir);
	uint8_t *sealed, *der;
	size_t sealed_len, der_len;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	maintain(fx, NOW, &ev);
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 1);
	epoch = smime_cert_from_der(l.items[0].public_data, l.items[0].public_len);
	sealed = xmalloc(l.items[0].secret_len);
	memcpy(sealed, l.items[0].secret_data, l.items[0].secret_len);
	sealed_len = l.items[0].secret_len;
	der = xmalloc(der_len = l.items[0].public_len);
	memcpy(der, l.items[0].public_data, der_len);
	key_list_release(&l);

	m = message_to(fx, epoch);
	run_inbound(fx, m, &out);
	if (strcmp(out.what, "decrypted") != 0)
		fail_msg("%s: %s", out.what, out.detail);
	assert_string_equal(fx->fake.body.data, "For this week's key only.\r\n");
	message_free(m);
	/* The control: before deletion the key's bytes are in the store's files. */
	assert_true(file_holds(db, sealed, sealed_len) || file_holds(wal, sealed, sealed_len));

	/* Mail encrypted before a rotation and delivered after it (queued at the sender) still opens. */
	maintain(fx, NOW + 7 * DAY, &ev);
	assert_int_equal(ev.made, 1);
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	m = message_to(fx, epoch);
	run_inbound(fx, m, &out);
	if (strcmp(out.what, "decrypted") != 0)
		fail_msg("after the rotation: %s: %s", out.what, out.detail);
	message_free(m);

	/* Expiry + grace later, the key is gone from every file, and so is the mail. */
	maintain(fx, NOW + 14 * DAY, &ev);
	assert_int_equal(ev.deleted, 1);
	assert_false(file_holds(db, sealed, sealed_len));
	assert_false(file_holds(wal, sealed, sealed_len));
	assert_false(file_holds(db, der, der_len));
	assert_false(file_holds(wal, der, der_len));
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	m = message_to(fx, epoch);
	run_inbound(fx, m, &out);
	assert_string_equal(out.what, "not-decrypted");
	if (strstr(out.detail, "encrypted to a key of bob@a.test that is no longer held (an expired epoch key") == NULL)
		fail_msg("the reason: %s", out.detail);
	assert_int_equal(fx->fake.body.len, 0);
	message_free(m);
	X509_free(epoch);
	free(sealed);
	free(der);
	free(db);
	free(wal);
	milter_fixture_free(fx);
}


/* Store cert for addr as a discovered key of source (no private key). */
static void
store_public(struct milter_fixture *fx, const char *addr, X509 *cert, const char *source, char fpr[65])
{
	struct key_record r;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strcpy(r.format, "smime");
	smime_cert_fingerprint(cert, r.fingerprint);
	r.public_data = smime_cert_to_der(cert, &r.public_len);
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.source = (char *)source;
	assert_int_equal(keystore_put(fx->ks, &r, (time_t)NOW, NULL), CABLES_OK);
	free(r.public_data);
	strcpy(fpr, r.fingerprint);
}

/*
 * Sending: which certificate the milter encrypts dave@c.test's mail to,
 * given what keyd confirmed, by ForwardSecrecy.
 */
static void
test_sending_follows_forward_secrecy(void **state)
{
	X509 *lt, *ep, *got;
	EVP_PKEY *ltk, *epk;
	char lt_fpr[65], ep_fpr[65], fpr[65];
	const struct {
		const char *what, *config;
		bool confirm_epoch;
		const char *want;	/* "epoch", "long-term" or NULL (none) */
		const char *why;
	} cases[] = {
		{ "prefer (the default), epoch key confirmed", "", true, "epoch", NULL },
		{ "prefer, the epoch key not confirmed by keyd", "", false, "long-term", NULL },
		{ "off", "Policy c.test ForwardSecrecy=off", true, "long-term", NULL },
		{ "require, epoch key confirmed", "Policy c.test ForwardSecrecy=require", true, "epoch", NULL },
		{ "require, none", "Policy dave@c.test ForwardSecrecy=require", false, NULL, "ForwardSecrecy require" },
	};

	assert_int_equal(smime_generate("dave@c.test", SMIME_ALGO_P256, 365, (time_t)NOW, &lt, &ltk, NULL), CABLES_OK);
	assert_int_equal(smime_epoch_issue(lt, ltk, "dave@c.test", NOW, NOW + 8 * DAY, &ep, &epk, NULL), CABLES_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new(cases[i].config, (time_t)NOW + 60);
		struct keyd_found found;
		cables_status st;
		char *why = NULL;
		bool epoch;

		store_public(fx, "dave@c.test", lt, "peer", lt_fpr);
		store_public(fx, "dave@c.test", ep, KEYSTORE_PEER_EPOCH_SOURCE, ep_fpr);
		memset(&found, 0, sizeof(found));
		strcpy(found.fpr[found.n++], lt_fpr);
		if (cases[i].confirm_epoch)
			strcpy(found.fpr[found.n++], ep_fpr);
		fx->env.confirmed = &found;
		got = keys_cert(&fx->env, "dave@c.test", KEY_ENCRYPT, &epoch, &why, &st, NULL);
		assert_int_equal(st, CABLES_OK);
		if (cases[i].want == NULL) {
			if (got != NULL || why == NULL || strstr(why, cases[i].why) == NULL)
				fail_msg("%s: a key, or the reason '%s'", cases[i].what, why != NULL ? why : "");
		} else {
			if (got == NULL)
				fail_msg("%s: no key: %s", cases[i].what, why);
			smime_cert_fingerprint(got, fpr);
			if (strcmp(fpr, strcmp(cases[i].want, "epoch") == 0 ? ep_fpr : lt_fpr) != 0)
				fail_msg("%s: not the %s key", cases[i].what, cases[i].want);
			assert_int_equal(epoch, strcmp(cases[i].want, "epoch") == 0);
		}
		/* Signing and local addresses know no ForwardSecrecy; dave has no OpenPGP key of any kind. */
		X509_free(got);
		free(why);
		why = NULL;
		{
			char pfpr[42];
			bool pgp_epoch = true;
			bool pgp = keys_pgp(&fx->env, "dave@c.test", KEY_ENCRYPT, pfpr, &pgp_epoch, &why, &st, NULL);

			assert_false(pgp);
			assert_false(pgp_epoch);
			if (strstr(cases[i].config, "require") != NULL)
				assert_non_null(strstr(why, "ForwardSecrecy require"));
			free(why);
		}
		milter_fixture_free(fx);
	}
	X509_free(lt);
	X509_free(ep);
	EVP_PKEY_free(ltk);
	EVP_PKEY_free(epk);
}

/*
 * OpenPGP: bob's long-term key (gpg-made, its secret sealed in the store as
 * cables-keyctl stores it) gets an epoch subkey bound by its primary, one
 * that checks against the long-term key; it is the one the keyholder names
 * for keyd (its public form's digest), rotated a week on and deleted after
 * expiry and grace, as S/MIME ones are.  The S/MIME side names none.
 */
static void
test_pgp_epoch_keys_rotate_are_named_and_go(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", (time_t)NOW);
	struct epochkeys_env e = { fx->ks, fx->seal_key, &fx->cfg->local_domains, week, count_event, NULL };
	struct events ev;
	struct key_list l;
	struct key_record r;
	struct buf pub, sec;
	struct pgp_epoch_info info;
	struct cables_err err;
	char home[64], fpr[PGP_FPR_LEN + 1], first[65];
	uint8_t digest[32], want[32];
	bool found;

	(void)state;
	buf_init(&pub);
	buf_init(&sec);
	assert_int_equal(pgp_temp_home("/tmp", home, &err), CABLES_OK);
	assert_int_equal(pgp_generate(home, "bob@a.test", PGP_ALGO_ED25519, 0, fpr, &err), CABLES_OK);
	assert_int_equal(pgp_export(home, fpr, false, false, &pub, &err), CABLES_OK);
	assert_int_equal(pgp_export(home, fpr, true, false, &sec, &err), CABLES_OK);
	memset(&r, 0, sizeof(r));
	r.address = "bob@a.test";
	strlcpy_c(r.format, "pgp", sizeof(r.format));
	strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
	r.public_data = (uint8_t *)pub.data;
	r.public_len = pub.len;
	assert_int_equal(seal_close(fx->seal_key, r.fingerprint, (const uint8_t *)sec.data, sec.len, &r.secret_data,
	    &r.secret_len, &err), CABLES_OK);
	r.not_before = NOW - DAY;
	r.not_after = KEYSTORE_NEVER_EXPIRES;
	r.source = "generated";
	assert_int_equal(keystore_put(fx->ks, &r, (time_t)NOW, &err), CABLES_OK);
	free(r.secret_data);

	maintain(fx, NOW, &ev);
	assert_int_equal(ev.made, 1);
	strlcpy_c(first, ev.last_fpr, sizeof(first));
	l = epochs_of(fx, "bob@a.test");
	assert_int_equal(l.count, 1);
	assert_string_equal(l.items[0].format, "pgp");
	assert_string_equal(l.items[0].fingerprint, first);
	assert_int_equal(l.items[0].not_after, NOW + 8 * DAY);
	assert_int_equal(pgp_epoch_check(l.items[0].public_data, l.items[0].public_len, (const uint8_t *)pub.data, pub.len,
	    NOW + 60, 35 * DAY, &info, &err), CABLES_OK);
	assert_string_equal(info.fpr, first);
	SHA256(l.items[0].public_data, l.items[0].public_len, want);
	key_list_release(&l);
	e.arg = &ev;
	assert_int_equal(epochkeys_current_format(&e, "bob@a.test", "pgp", NOW + 60, digest, &found, &err), CABLES_OK);
	assert_true(found);
	assert_memory_equal(digest, want, 32);
	assert_int_equal(epochkeys_current(&e, "bob@a.test", NOW + 60, digest, &found, &err), CABLES_OK);
	assert_false(found);		/* bob has no S/MIME key */
	{
		/*
		 * A planted row (the milter can write keys.db): a well-formed epoch
		 * key expiring later, with a seal no keyholder made.  Ignored, and
		 * the genuine one is still the one named.
		 */
		struct pgp_keypkt primary;
		struct buf ppub;
		struct key_record pr;
		struct pgp_epoch_info pinfo;
		uint8_t *psec;
		size_t psec_len;
		EVP_PKEY *pkey;

		assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, NULL, &primary, &err), CABLES_OK);
		assert_non_null(pkey = pgp_key_private(&primary, &err));
		assert_int_equal(pgp_epoch_make((const uint8_t *)pub.data, pub.len, &primary, pkey, NOW, NOW + 20 * DAY, &ppub,
		    &psec, &psec_len, &pinfo, &err), CABLES_OK);
		EVP_PKEY_free(pkey);
		pgp_epoch_secret_free(psec, psec_len);
		memset(&pr, 0, sizeof(pr));
		pr.address = "bob@a.test";
		strlcpy_c(pr.format, "pgp", sizeof(pr.format));
		strlcpy_c(pr.fingerprint, pinfo.fpr, sizeof(pr.fingerprint));
		pr.public_data = (uint8_t *)ppub.data;
		pr.public_len = ppub.len;
		pr.secret_data = (uint8_t *)"garbage, not sealed";
		pr.secret_len = 19;
		pr.not_before = NOW;
		pr.not_after = NOW + 20 * DAY;
		pr.source = KEYSTORE_EPOCH_SOURCE;
		assert_int_equal(keystore_put(fx->ks, &pr, (time_t)NOW, &err), CABLES_OK);
		buf_release(&ppub);
		memset(&ev, 0, sizeof(ev));
		assert_int_equal(epochkeys_current_format(&e, "bob@a.test", "pgp", NOW + 60, digest, &found, &err),
		    CABLES_OK);
		assert_true(found);
		assert_memory_equal(digest, want, 32);
		assert_int_equal(ev.ignored, 1);
		assert_int_equal(keystore_delete(fx->ks, "bob@a.test", pinfo.fpr, &psec_len, &err), CABLES_OK);
	}

	maintain(fx, NOW + 7 * DAY, &ev);		/* in its overlap: the next one */
	assert_int_equal(ev.made, 1);
	assert_string_not_equal(ev.last_fpr, first);
	maintain(fx, NOW + 14 * DAY, &ev);		/* the first expired at +8d and goes 6 days later */
	assert_int_equal(ev.deleted, 1);
	assert_string_equal(ev.deleted_fpr, first);
	l = epochs_of(fx, "bob@a.test");
	for (size_t i = 0; i < l.count; i++) {
		assert_string_equal(l.items[i].format, "pgp");
		assert_string_not_equal(l.items[i].fingerprint, first);
	}
	key_list_release(&l);
	pgp_temp_home_remove(home);
	buf_release(&pub);
	buf_release(&sec);
	milter_fixture_free(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_makes_and_deletes_on_time),
		cmocka_unit_test(test_plan_without_keys_makes_one),
		cmocka_unit_test(test_rotation_over_weeks),
		cmocka_unit_test(test_a_planted_epoch_row_is_neither_served_nor_counted),
		cmocka_unit_test(test_a_planted_long_term_row_is_no_parent),
		cmocka_unit_test(test_a_replaced_long_term_key_gets_a_new_epoch_key_at_once),
		cmocka_unit_test(test_an_expired_epoch_row_goes_alone),
		cmocka_unit_test(test_turned_off_makes_none_but_still_deletes),
		cmocka_unit_test(test_no_epoch_key_without_a_usable_private_key),
		cmocka_unit_test(test_epoch_certificate_binds_address_and_long_term_key),
		cmocka_unit_test(test_inbound_decrypts_with_the_epoch_key_until_it_is_deleted),
		cmocka_unit_test(test_sending_follows_forward_secrecy),
		cmocka_unit_test(test_pgp_epoch_keys_rotate_are_named_and_go),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
