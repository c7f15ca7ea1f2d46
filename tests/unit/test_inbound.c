/*
 * test_inbound - decryption, verification and clean-up for local
 * recipients, driven without an MTA (recording fake, real key store, real
 * certificates and CMS).
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "helpers.h"
#include "dispatch.h"
#include "inbound.h"
#include "keydclient.h"
#include "mime.h"
#include "smime.h"

#include <openssl/cms.h>
#include <openssl/x509v3.h>

#define NOW ((time_t)1790000000)

static X509 *bob_cert, *carol_cert, *alice_cert, *old_cert, *alice2_cert;
static EVP_PKEY *bob_key, *carol_key, *alice_key, *old_key, *alice2_key;

static const char inner[] =
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello Bob.\r\n";

static int
group_setup(void **state)
{
	mime_init();
	if (smime_generate("bob@a.test", SMIME_ALGO_P256, 365, NOW, &bob_cert, &bob_key, NULL) != CABLES_OK ||
	    smime_generate("carol@a.test", SMIME_ALGO_P256, 365, NOW, &carol_cert, &carol_key, NULL) != CABLES_OK ||
	    smime_generate("alice@b.test", SMIME_ALGO_P256, 365, NOW, &alice_cert, &alice_key, NULL) != CABLES_OK ||
	    smime_generate("alice@b.test", SMIME_ALGO_P256, 365, NOW, &alice2_cert, &alice2_key, NULL) != CABLES_OK ||
	    smime_generate("bob@a.test", SMIME_ALGO_P256, 30, NOW - 86400, &old_cert, &old_key, NULL) != CABLES_OK)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	X509_free(bob_cert);
	X509_free(carol_cert);
	X509_free(alice_cert);
	X509_free(old_cert);
	X509_free(alice2_cert);
	EVP_PKEY_free(alice2_key);
	EVP_PKEY_free(bob_key);
	EVP_PKEY_free(carol_key);
	EVP_PKEY_free(alice_key);
	EVP_PKEY_free(old_key);
	return 0;
}

static cables_status
spool_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

/* Base64 S/MIME of an entity (head + body pieces) to the given certificates. */
static void
encrypt_into(struct spool *out, const struct entity_src *src, X509 *c1, X509 *c2, enum cipher_choice cipher)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_encrypt_opts o = { cipher, RSA_PAD_PKCS1 };
	struct byte_sink sink = { spool_write, out };

	sk_X509_push(certs, c1);
	if (c2 != NULL)
		sk_X509_push(certs, c2);
	assert_int_equal(smime_encrypt(&o, certs, src, &sink, NULL), CABLES_OK);
	sk_X509_free(certs);
}

/* An inbound S/MIME message from alice@b.test to the comma-separated local recipients. */
static struct message *
smime_message_of(struct milter_fixture *fx, const char *rcpts, X509 *c1, X509 *c2, const char *text)
{
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	struct entity_src src;
	char *copy = xstrdup(rcpts), *save = NULL;

	message_set_queue_id(m, "QID2");
	for (char *r = strtok_r(copy, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save))
		assert_true(message_add_rcpt(m, fx->cfg, r, NULL));
	free(copy);
	message_add_header(m, "From", "Alice <alice@b.test>");
	message_add_header(m, "Subject", "...");
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	message_add_header(m, "Content-Disposition", "attachment; filename=smime.p7m");
	entity_src_init(&src);
	entity_src_mem(&src, text, strlen(text));
	encrypt_into(m->body, &src, c1, c2, CIPHER_AES256_GCM);
	return m;
}

static struct message *
smime_message(struct milter_fixture *fx, const char *rcpts, X509 *c1, X509 *c2)
{
	return smime_message_of(fx, rcpts, c1, c2, inner);
}

/* As the milter does: plan at end of header; at end of message forged fields go, then the plan's end. */
static void
run(struct milter_fixture *fx, struct message *m, struct outcome *out)
{
	inbound_plan(m, &fx->env, out);
	if (out->verdict != VERDICT_CONTINUE) {
		if (message_forged_fields(m) == 0)
			return;
		m->early = *out;
		m->have_early = true;
	}
	dispatch_eom(m, &fx->env, &fx->fake.mta, out);
}

static void
test_decrypts_for_the_local_recipient_byte_for_byte(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m;
	struct outcome out;
	char fpr[65], *expect;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	m = smime_message(fx, "<bob@a.test>", bob_cert, NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "decrypted");
	smime_cert_fingerprint(bob_cert, fpr);
	expect = xasprintf(
	    "chg Content-Disposition 1 (delete)\n"
	    "chg Content-Transfer-Encoding 1 (delete)\n"
	    "chg Content-Type 1 (delete)\n"
	    "add Content-Type text/plain; charset=utf-8\n"
	    "add Content-Transfer-Encoding 8bit\n"
	    "ins 0 X-Cables decrypted; format=smime; key=%.16s\n", fpr);
	assert_string_equal(fx->fake.ops.data, expect);
	assert_string_equal(fx->fake.body.data, "Hello Bob.\r\n");
	assert_non_null(strstr(out.detail, "algorithm=aes-256-gcm"));
	free(expect);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_the_key_a_recipient_info_names_is_used(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m;
	struct outcome out;
	char fpr[65], *key;

	/* bob has an old and a new key; the sender used the old certificate. */
	milter_fixture_store(fx, "bob@a.test", old_cert, old_key);
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	m = smime_message(fx, "bob@a.test", old_cert, NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	smime_cert_fingerprint(old_cert, fpr);
	key = xasprintf("key=%.16s", fpr);
	assert_non_null(strstr(fx->fake.ops.data, key));
	free(key);
	assert_string_equal(fx->fake.body.data, "Hello Bob.\r\n");
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_no_plaintext_for_a_recipient_the_sender_did_not_encrypt_to(void **state)
{
	const struct { const char *rcpts; bool carol_key; const char *why; } cases[] = {
		{ "bob@a.test,carol@a.test", true,
		    "carol@a.test is not a recipient of the encryption (no ReinjectTo for split delivery)" },
		{ "bob@a.test,carol@a.test", false, "no private key for carol@a.test (no ReinjectTo for split delivery)" },
		{ "carol@a.test", true, "carol@a.test is not a recipient of the encryption" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new("", NOW);
		struct message *m;
		struct outcome out;
		char *expect;

		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		if (cases[i].carol_key)
			milter_fixture_store(fx, "carol@a.test", carol_cert, carol_key);
		m = smime_message(fx, cases[i].rcpts, bob_cert, NULL);
		run(fx, m, &out);
		assert_string_equal(out.what, "not-decrypted");
		assert_string_equal(out.detail, cases[i].why);
		expect = xasprintf("ins 0 X-Cables not-decrypted; format=smime; reason=\"%s\"\n", cases[i].why);
		assert_string_equal(fx->fake.ops.data, expect);
		assert_int_equal(fx->fake.body.len, 0);	/* the encrypted body stays */
		free(expect);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_two_targets_both_local_are_decrypted(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m;
	struct outcome out;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	milter_fixture_store(fx, "carol@a.test", carol_cert, carol_key);
	m = smime_message(fx, "bob@a.test,Bob+x@a.test,carol@a.test", bob_cert, carol_cert);
	run(fx, m, &out);
	assert_string_equal(out.what, "decrypted");
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_undecryptable_input_passes_with_the_reason(void **state)
{
	char long_text[8192];
	const struct { const char *what, *body, *reason; } cases[] = {
		{ "flipped byte", NULL, "cannot decrypt" },
		{ "not base64", "this is not base64 at all!\r\n", "bad base64: character 0x21 at byte 25" },
		{ "truncated base64", "MIAGCSqGSIb3DQEHA6CAMIACAQAx\r\nggHF7", "truncated base64" },
		{ "empty", "", "empty S/MIME body" },
	};

	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new("", NOW);
		struct message *m;
		struct outcome out;

		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		m = smime_message_of(fx, "bob@a.test", bob_cert, NULL, long_text);
		if (cases[i].body != NULL) {
			spool_free(m->body);
			m->body = spool_new(fx->dir, SPOOL_MEMORY_LIMIT, 0);
			spool_append(m->body, cases[i].body, strlen(cases[i].body), NULL);
		} else {
			/* Change one base64 character in the middle: inside the 8 KB of ciphertext. */
			size_t n = spool_size(m->body), got;
			char *data = malloc(n);

			spool_pread(m->body, 0, data, n, &got, NULL);
			data[n / 2] = data[n / 2] == 'A' ? 'B' : 'A';
			spool_free(m->body);
			m->body = spool_new(fx->dir, SPOOL_MEMORY_LIMIT, 0);
			spool_append(m->body, data, n, NULL);
			free(data);
		}
		run(fx, m, &out);
		if (strcmp(out.what, "not-decrypted") != 0 || strstr(out.detail, cases[i].reason) == NULL)
			fail_msg("case '%s': %s: %s", cases[i].what, out.what, out.detail);
		assert_int_equal(out.verdict, VERDICT_MODIFIED);
		assert_int_equal(fx->fake.body.len, 0);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_forged_result_fields_are_removed(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m = message_new(fx->cfg, "mallory@evil.test", false, false);
	struct outcome out;

	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "X-Cables", "decrypted; format=smime; signature=valid; signer=ceo@a.test");
	message_add_header(m, "Authentication-Results", "mx.a.test; smime=pass body.smime-identifier=ceo@a.test");
	message_add_header(m, "Subject", "wire the money");
	message_add_header(m, "Authentication-Results", "mx.other.test; dkim=pass header.d=evil.test");
	message_add_header(m, "x-cables", "whatever");
	/* Our id however written: quoted, with comments, folded, other case, final dot; or unreadable. */
	message_add_header(m, "authentication-results", " (ours?) \"MX.A.test.\"\r\n\t; x-pgp=pass");
	message_add_header(m, "Authentication-Results", "(unclosed mx.a.test; smime=pass");
	message_add_header(m, "Authentication-Results", "mx.a.test.evil.test; smime=pass");
	message_add_body(m, "hi\r\n", 4);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(fx->fake.ops.data, "chg X-Cables 2 (delete)\nchg X-Cables 1 (delete)\n"
	    "chg Authentication-Results 4 (delete)\nchg Authentication-Results 3 (delete)\n"
	    "chg Authentication-Results 1 (delete)\n");
	assert_non_null(strstr(out.detail, "forged fields removed: 2 X-Cables, 3 Authentication-Results (mx.a.test)"));
	message_free(m);
	/* Without such fields plain inbound mail is accepted at end of header. */
	m = message_new(fx->cfg, "alice@b.test", false, false);
	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "Content-Type", "text/plain");
	inbound_plan(m, &fx->env, &out);
	assert_int_equal(out.verdict, VERDICT_ACCEPT);
	message_free(m);
	milter_fixture_free(fx);
}

/* A signed-then-encrypted message from alice@b.test, signed with cert and key. */
static struct message *
signed_message_by(struct milter_fixture *fx, const char *from, X509 *cert, EVP_PKEY *key)
{
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	struct entity_src src, sig_src;
	struct smime_signed sig;
	char *sig_head;

	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "From", from);
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&sig_src);
	entity_src_mem(&sig_src, inner, strlen(inner));
	assert_int_equal(smime_sign(cert, key, NULL, &sig_src, &sig, NULL), CABLES_OK);
	sig_head = xasprintf("Content-Type: %s\r\n\r\n", sig.content_type);
	entity_src_init(&src);
	entity_src_mem(&src, sig_head, strlen(sig_head));
	entity_src_mem(&src, sig.prologue.data, sig.prologue.len);
	entity_src_mem(&src, inner, strlen(inner));
	entity_src_mem(&src, sig.epilogue.data, sig.epilogue.len);
	encrypt_into(m->body, &src, bob_cert, NULL, CIPHER_AES256_CBC);
	smime_signed_release(&sig);
	free(sig_head);
	return m;
}

/* A signed-then-encrypted message from alice@b.test, signed by her first certificate. */
static struct message *
signed_message(struct milter_fixture *fx, const char *from)
{
	return signed_message_by(fx, from, alice_cert, alice_key);
}

static void
test_inner_signature_is_verified_and_kept(void **state)
{
	const struct { const char *from; bool known; const char *expect; } cases[] = {
		{ "Alice <alice@b.test>", true,
		    "ins 0 Authentication-Results mx.a.test; smime=pass body.smime-identifier=\"alice@b.test\"\n" },
		{ "Alice <alice@b.test>", false, "ins 0 Authentication-Results mx.a.test; smime=policy reason=\"signer's "
		    "certificate is not in the key store and no TrustAnchors are configured\" "
		    "body.smime-identifier=\"alice@b.test\"\n" },
		/* Held for alice, the certificate vouches for nobody else: not trusted for ceo. */
		{ "CEO <ceo@a.test>", true, "ins 0 Authentication-Results mx.a.test; smime=policy "
		    "reason=\"signer's certificate is not in the key store and no TrustAnchors are configured; "
		    "the signer is not the From address\" body.smime-identifier=\"alice@b.test\" "
		    "header.from=\"ceo@a.test\"\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new("HarvestCertificates no", NOW);
		struct message *m;
		struct outcome out;

		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		if (cases[i].known)
			milter_fixture_store(fx, "alice@b.test", alice_cert, NULL);
		m = signed_message(fx, cases[i].from);
		run(fx, m, &out);
		assert_string_equal(out.what, "decrypted");
		if (strstr(fx->fake.ops.data, cases[i].expect) == NULL)
			fail_msg("case %zu: %s", i, fx->fake.ops.data);
		/* Decryption in X-Cables, the signature only in Authentication-Results. */
		assert_non_null(strstr(fx->fake.ops.data, "ins 0 X-Cables decrypted; format=smime; key="));
		assert_null(strstr(fx->fake.ops.data, "signature="));
		/* The signed entity is delivered as it is, for the client to check too. */
		assert_non_null(strstr(fx->fake.body.data, "Content-Type: application/pkcs7-signature"));
		assert_non_null(strstr(fx->fake.body.data, inner));
		assert_non_null(strstr(fx->fake.ops.data, "add Content-Type multipart/signed"));
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_valid_signatures_are_harvested_for_remote_addresses(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509_STORE *anchors = X509_STORE_new();
	struct message *m;
	struct outcome out;
	struct key_list keys;

	X509_STORE_add_cert(anchors, alice_cert);	/* alice's self-signed certificate as an anchor */
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "signature=valid signer=alice@b.test harvest=harvested (certificate "));
	assert_non_null(strstr(out.detail, "for alice@b.test, pinned (first key seen)"));
	assert_int_equal(keystore_lookup(fx->ks, "alice@b.test", "smime", &keys, NULL), CABLES_OK);
	assert_int_equal(keys.count, 1);
	assert_string_equal(keys.items[0].source, "harvested");
	key_list_release(&keys);
	message_free(m);
	/* The second time the certificate is known: nothing is stored again. */
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "signature=valid signer=alice@b.test harvest=unchanged (certificate "));
	message_free(m);
	X509_STORE_free(anchors);
	milter_fixture_free(fx);
}

static void
test_plain_signed_mail_is_verified(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	struct entity_src src;
	struct smime_signed sig;
	struct outcome out;

	milter_fixture_store(fx, "alice@b.test", alice_cert, NULL);
	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "From", "alice@b.test");
	entity_src_init(&src);
	entity_src_mem(&src, inner, strlen(inner));
	assert_int_equal(smime_sign(alice_cert, alice_key, NULL, &src, &sig, NULL), CABLES_OK);
	message_add_header(m, "Content-Type", sig.content_type);
	message_add_body(m, sig.prologue.data, sig.prologue.len);
	message_add_body(m, inner, strlen(inner));
	message_add_body(m, sig.epilogue.data, sig.epilogue.len);
	run(fx, m, &out);
	assert_string_equal(out.what, "verified");
	assert_string_equal(fx->fake.ops.data,
	    "ins 0 Authentication-Results mx.a.test; smime=pass body.smime-identifier=\"alice@b.test\"\n");
	assert_int_equal(fx->fake.body.len, 0);
	smime_signed_release(&sig);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_protected_subject_is_restored(void **state)
{
	static const char protected_inner[] =
	    "Content-Type: text/plain; charset=us-ascii; protected-headers=\"v1\"\r\n"
	    "Subject: The real subject\r\nFrom: Alice <alice@b.test>\r\nX-Other: stays inside\r\n\r\nbody\r\n";
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	struct entity_src src;
	struct outcome out;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "Subject", "...");
	message_add_header(m, "From", "Alice <alice@b.test>");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&src);
	entity_src_mem(&src, protected_inner, strlen(protected_inner));
	encrypt_into(m->body, &src, bob_cert, NULL, CIPHER_AES256_CBC);
	run(fx, m, &out);
	assert_string_equal(out.what, "decrypted");
	assert_non_null(strstr(fx->fake.ops.data, "chg Subject 1 The real subject\n"));
	assert_non_null(strstr(fx->fake.ops.data, "chg From 1 Alice <alice@b.test>\n"));
	/* RFC 9788 section 4: the protected header section is the message's, every field of it. */
	assert_non_null(strstr(fx->fake.ops.data, "add X-Other stays inside\n"));
	assert_non_null(strstr(out.detail, "hp=protected-headers-v1"));
	message_free(m);
	milter_fixture_free(fx);
}

/*
 * An encrypted message with protected fields (RFC 9788 hp="cipher") From
 * outer_from, the payload's From protected_from, signed with cert and key
 * when cert is not NULL (signed then encrypted, as clients do).
 */
static struct message *
hp_message(struct milter_fixture *fx, const char *outer_from, const char *protected_from, X509 *cert, EVP_PKEY *key)
{
	struct message *m = message_new(fx->cfg, "x@evil.test", false, false);
	char *payload = xasprintf("From: %s\r\nSubject: Board meeting moved\r\n"
	    "Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"\r\n\r\nSee you at nine.\r\n", protected_from);
	struct entity_src src, sig_src;
	struct smime_signed sig;
	char *sig_head = NULL;

	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "From", outer_from);
	message_add_header(m, "Subject", "[...]");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&src);
	if (cert != NULL) {
		entity_src_init(&sig_src);
		entity_src_mem(&sig_src, payload, strlen(payload));
		assert_int_equal(smime_sign(cert, key, NULL, &sig_src, &sig, NULL), CABLES_OK);
		sig_head = xasprintf("Content-Type: %s\r\n\r\n", sig.content_type);
		entity_src_mem(&src, sig_head, strlen(sig_head));
		entity_src_mem(&src, sig.prologue.data, sig.prologue.len);
	}
	entity_src_mem(&src, payload, strlen(payload));
	if (cert != NULL)
		entity_src_mem(&src, sig.epilogue.data, sig.epilogue.len);
	encrypt_into(m->body, &src, bob_cert, NULL, CIPHER_AES256_CBC);
	if (cert != NULL)
		smime_signed_release(&sig);
	free(sig_head);
	free(payload);
	return m;
}

static void
test_protected_from_needs_its_own_signature(void **state)
{
	X509 *ceo_cert, *evil_cert;
	EVP_PKEY *ceo_key, *evil_key;
	enum { NOBODY, EVIL, CEO };
	const struct {
		const char *outer, *inner;
		int signer;
		bool evil_anchored;		/* the attacker's certificate chains to TrustAnchors */
		const char *want, *not_want;	/* in the MTA's operations */
		const char *detail;		/* in the log line */
	} cases[] = {
		/* (a) unsigned, the CEO's address inside: the outer From stays, and the verdict says so. */
		{ "attacker@evil.test", "CEO <ceo@a.test>", NOBODY, false,
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From",
		    "identity=kept-outer (protected From ceo@a.test is not signed by that address)" },
		/* (b) signed by the attacker's own certificate, untrusted and then trusted: still the outer From. */
		{ "attacker@evil.test", "CEO <ceo@a.test>", EVIL, false, "; from=outer;", "chg From",
		    "identity=kept-outer" },
		{ "attacker@evil.test", "CEO <ceo@a.test>", EVIL, true,
		    "smime=pass body.smime-identifier=\"attacker@evil.test\"\n", "chg From", "identity=kept-outer" },
		/* (c) signed by the CEO's own certificate: the protected From is shown, and passes. */
		{ "attacker@evil.test", "CEO <ceo@a.test>", CEO, false,
		    "chg From 1 CEO <ceo@a.test>\n", "from=outer", "identity=signed" },
		{ "attacker@evil.test", "CEO <ceo@a.test>", CEO, false,
		    "smime=pass body.smime-identifier=\"ceo@a.test\"\n", "header.from", "signature=valid" },
		/* (e) an outer From of two mailboxes, or one read leniently, names no one: signature needed. */
		{ "attacker@evil.test, ceo@a.test", "CEO <ceo@a.test>", NOBODY, false,
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From", "identity=kept-outer" },
		{ "ceo@a.test@evil.test", "CEO <ceo@a.test>", NOBODY, false,
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From", "identity=kept-outer" },
		/* (d) the same address outside: restored as before, unsigned, display name and all. */
		{ "attacker@evil.test", "The Attacker <Attacker@Evil.test>", NOBODY, false,
		    "chg From 1 The Attacker <Attacker@Evil.test>\n", "from=outer", "hp=rfc9788" },
	};

	assert_int_equal(smime_generate("ceo@a.test", SMIME_ALGO_P256, 365, NOW, &ceo_cert, &ceo_key, NULL), CABLES_OK);
	assert_int_equal(smime_generate("attacker@evil.test", SMIME_ALGO_P256, 365, NOW, &evil_cert, &evil_key, NULL),
	    CABLES_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new("HarvestCertificates no", NOW);
		X509_STORE *anchors = NULL;
		struct message *m;
		struct outcome out;

		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		milter_fixture_store(fx, "ceo@a.test", ceo_cert, ceo_key);
		milter_fixture_store(fx, "attacker@evil.test", evil_cert, NULL);
		if (cases[i].evil_anchored) {
			anchors = X509_STORE_new();
			X509_STORE_add_cert(anchors, evil_cert);
			fx->env.anchors = anchors;
		}
		m = hp_message(fx, cases[i].outer, cases[i].inner,
		    cases[i].signer == CEO ? ceo_cert : cases[i].signer == EVIL ? evil_cert : NULL,
		    cases[i].signer == CEO ? ceo_key : cases[i].signer == EVIL ? evil_key : NULL);
		run(fx, m, &out);
		assert_string_equal(out.what, "decrypted");
		if (strstr(fx->fake.ops.data, cases[i].want) == NULL || strstr(fx->fake.ops.data, cases[i].not_want) != NULL ||
		    strstr(out.detail, cases[i].detail) == NULL)
			fail_msg("case %zu:\n%s\n%s", i, fx->fake.ops.data, out.detail);
		/* Fields that name no one are restored whatever the signature. */
		assert_non_null(strstr(fx->fake.ops.data, "chg Subject 1 Board meeting moved\n"));
		message_free(m);
		fx->env.anchors = NULL;
		X509_STORE_free(anchors);
		milter_fixture_free(fx);
	}
	X509_free(ceo_cert);
	X509_free(evil_cert);
	EVP_PKEY_free(ceo_key);
	EVP_PKEY_free(evil_key);
	(void)state;
}

/*
 * Opaque signed-data signs the content inside it, not the entity's own
 * header section: a replayed signed-data blob from the CEO, wrapped in
 * protected fields naming the CEO, restores no From however valid the
 * signature is (the review's first hole).
 */
static void
test_opaque_signed_data_vouches_for_no_protected_field(void **state)
{
	static const char content[] = "Content-Type: text/plain\r\n\r\nOK, approved.\r\n";
	struct milter_fixture *fx = milter_fixture_new("HarvestCertificates no", NOW);
	struct message *m = message_new(fx->cfg, "x@evil.test", false, false);
	X509_STORE *anchors = X509_STORE_new();
	X509 *ceo_cert;
	EVP_PKEY *ceo_key;
	BIO *in;
	CMS_ContentInfo *cms;
	unsigned char *der = NULL;
	int der_len;
	struct buf ent;
	struct entity_src src;
	struct outcome out;

	assert_int_equal(smime_generate("ceo@a.test", SMIME_ALGO_P256, 365, NOW, &ceo_cert, &ceo_key, NULL), CABLES_OK);
	X509_STORE_add_cert(anchors, ceo_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	/* Whatever the CEO once signed, opaque. */
	in = BIO_new_mem_buf(content, (int)strlen(content));
	cms = CMS_sign(ceo_cert, ceo_key, NULL, in, CMS_BINARY | CMS_NOSMIMECAP);
	assert_non_null(cms);
	der_len = i2d_CMS_ContentInfo(cms, &der);
	assert_true(der_len > 0);
	buf_init(&ent);
	buf_appends(&ent, "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m; hp=\"cipher\"\r\n"
	    "Content-Transfer-Encoding: binary\r\nFrom: CEO <ceo@a.test>\r\nSubject: Wire 1M today\r\n\r\n");
	buf_append(&ent, der, (size_t)der_len);
	assert_true(message_add_rcpt(m, fx->cfg, "bob@a.test", NULL));
	message_add_header(m, "From", "attacker@evil.test");
	message_add_header(m, "Subject", "[...]");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&src);
	entity_src_mem(&src, ent.data, ent.len);
	encrypt_into(m->body, &src, bob_cert, NULL, CIPHER_AES256_CBC);
	run(fx, m, &out);
	assert_string_equal(out.what, "decrypted");
	/* The signature checks out, but it is no one's word on the From: the outer one stays. */
	if (strstr(out.detail, "signature=valid") == NULL || strstr(fx->fake.ops.data, "chg From") != NULL ||
	    strstr(fx->fake.ops.data, "; from=outer; protected-identity=\"ceo@a.test\"") == NULL ||
	    strstr(out.detail, "identity=kept-outer") == NULL)
		fail_msg("%s\n%s", fx->fake.ops.data, out.detail);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	buf_release(&ent);
	message_free(m);
	fx->env.anchors = NULL;
	X509_STORE_free(anchors);
	X509_free(ceo_cert);
	EVP_PKEY_free(ceo_key);
	milter_fixture_free(fx);
	(void)state;
}

static void
test_failures_on_our_side_temp_fail(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	struct message *m;
	struct outcome out;
	sqlite3 *db;

	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	/* No store key: the mail waits until the administrator fixes it. */
	fx->env.seal_key = NULL;
	m = smime_message(fx, "bob@a.test", bob_cert, NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_non_null(strstr(out.detail, "private keys unavailable"));
	message_free(m);
	fx->env.seal_key = fx->seal_key;
	/* The key store failing. */
	assert_int_equal(sqlite3_open(fx->cfg->key_store, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE keys", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	m = smime_message(fx, "bob@a.test", bob_cert, NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	message_free(m);
	milter_fixture_free(fx);
}

/* The store's S/MIME keys of addr: how many, and the fingerprint of the first (newest). */
static size_t
stored(struct milter_fixture *fx, const char *addr, char fpr[65])
{
	struct key_list keys;
	size_t n;

	assert_int_equal(keystore_lookup(fx->ks, addr, "smime", &keys, NULL), CABLES_OK);
	n = keys.count;
	if (fpr != NULL)
		strlcpy_c(fpr, n > 0 ? keys.items[0].fingerprint : "", 65);
	key_list_release(&keys);
	return n;
}

static void
test_harvest_only_for_the_from_address(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509_STORE *anchors = X509_STORE_new();
	struct message *m;
	struct outcome out;

	X509_STORE_add_cert(anchors, alice_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	/* alice's valid signature on a message From mallory: stored for nobody. */
	m = signed_message(fx, "Alice <mallory@b.test>");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "harvest=refused (address mismatch: certificate "));
	assert_non_null(strstr(out.detail, "does not name the From address mallory@b.test)"));
	assert_int_equal(stored(fx, "alice@b.test", NULL), 0);
	assert_int_equal(stored(fx, "mallory@b.test", NULL), 0);
	message_free(m);
	X509_STORE_free(anchors);
	milter_fixture_free(fx);
}

static void
test_harvest_key_change_follows_on_key_change(void **state)
{
	const struct { const char *config; bool changes; const char *expect; } cases[] = {
		{ "", true, "harvest=harvested (certificate " },
		{ "On-KeyChange tempfail\n", false, "On-KeyChange tempfail (cables-keyctl pins clear alice@b.test" },
		{ "Policy alice@b.test On-KeyChange=reject\n", false, "pinned for alice@b.test: On-KeyChange reject" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new(cases[i].config, NOW);
		X509_STORE *anchors = X509_STORE_new(), *anchors2 = X509_STORE_new();
		char first[65], second[65], now_fpr[65];
		struct message *m;
		struct outcome out;
		struct key_pin pin;

		/* Both self-signed with one subject: a store each, as if a CA had issued both. */
		X509_STORE_add_cert(anchors, alice_cert);
		X509_STORE_add_cert(anchors2, alice2_cert);
		fx->env.anchors = anchors;
		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		smime_cert_fingerprint(alice_cert, first);
		smime_cert_fingerprint(alice2_cert, second);
		m = signed_message(fx, "alice@b.test");
		run(fx, m, &out);
		assert_non_null(strstr(out.detail, "harvest=harvested"));
		message_free(m);
		fake_mta_release(&fx->fake);
		fake_mta_init(&fx->fake, false);
		fx->env.anchors = anchors2;
		m = signed_message_by(fx, "alice@b.test", alice2_cert, alice2_key);
		run(fx, m, &out);
		if (strstr(out.detail, cases[i].expect) == NULL)
			fail_msg("case %zu: %s", i, out.detail);
		/* One key for alice either way: the new one replaced the old, or the old stays. */
		assert_int_equal(stored(fx, "alice@b.test", now_fpr), 1);
		assert_string_equal(now_fpr, cases[i].changes ? second : first);
		assert_int_equal(keystore_pin_get(fx->ks, "alice@b.test", "smime", &pin, NULL), CABLES_OK);
		assert_string_equal(pin.fingerprint, cases[i].changes ? second : first);
		assert_string_equal(pin.offered, cases[i].changes ? "" : second);
		assert_int_equal(pin.changes, cases[i].changes ? 1 : 0);
		key_pin_release(&pin);
		message_free(m);
		X509_STORE_free(anchors);
		X509_STORE_free(anchors2);
		milter_fixture_free(fx);
	}
}

static void
test_harvest_never_replaces_an_imported_key(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509_STORE *anchors = X509_STORE_new();
	struct key_record r;
	struct message *m;
	struct outcome out;
	char fpr[65], held[65];

	X509_STORE_add_cert(anchors, alice_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	memset(&r, 0, sizeof(r));
	r.address = "alice@b.test";
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(alice2_cert, held);
	strlcpy_c(r.fingerprint, held, sizeof(r.fingerprint));
	r.public_data = smime_cert_to_der(alice2_cert, &r.public_len);
	smime_cert_validity(alice2_cert, &r.not_before, &r.not_after);
	r.source = "imported";
	assert_int_equal(keystore_put(fx->ks, &r, NOW, NULL), CABLES_OK);
	free(r.public_data);
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "harvest=refused (key change: certificate "));
	assert_non_null(strstr(out.detail, "(imported) is held for alice@b.test"));
	assert_int_equal(stored(fx, "alice@b.test", fpr), 1);
	assert_string_equal(fpr, held);
	message_free(m);
	X509_STORE_free(anchors);
	milter_fixture_free(fx);
}

/* A pin from DNSSEC is never moved by a harvested certificate, even under On-KeyChange accept. */
static void
test_harvest_never_replaces_a_dnssec_pin(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("On-KeyChange accept\n", NOW);
	X509_STORE *anchors = X509_STORE_new();
	struct key_pin pin;
	struct message *m;
	struct outcome out;

	X509_STORE_add_cert(anchors, alice_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	memset(&pin, 0, sizeof(pin));
	pin.address = "alice@b.test";
	strlcpy_c(pin.format, "smime", sizeof(pin.format));
	smime_cert_fingerprint(alice2_cert, pin.fingerprint);
	pin.source = "dns-dnssec";
	pin.first_seen = pin.last_seen = NOW;
	assert_int_equal(keystore_pin_set(fx->ks, &pin, NULL), CABLES_OK);
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	if (strstr(out.detail, "harvest=refused (key change: certificate ") == NULL ||
	    strstr(out.detail, "(dns-dnssec), which a harvested certificate never replaces") == NULL)
		fail_msg("%s", out.detail);
	assert_int_equal(stored(fx, "alice@b.test", NULL), 0);
	assert_int_equal(keystore_pin_get(fx->ks, "alice@b.test", "smime", &pin, NULL), CABLES_OK);
	assert_string_equal(pin.source, "dns-dnssec");
	key_pin_release(&pin);
	message_free(m);
	X509_STORE_free(anchors);
	milter_fixture_free(fx);
}

/* A copy of base (re-signed with key) whose subjectAltName names the comma-separated e-mail addresses. */
static X509 *
cert_naming(X509 *base, EVP_PKEY *key, const char *emails)
{
	X509 *c = X509_dup(base);
	X509_EXTENSION *ext;
	struct buf b;
	char *copy = xstrdup(emails), *save = NULL, *san;
	int i;

	buf_init(&b);
	for (char *e = strtok_r(copy, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save))
		buf_printf(&b, "%semail:%s", b.len > 0 ? "," : "", e);
	san = xstrndup(b.data, b.len);
	buf_release(&b);
	free(copy);
	while ((i = X509_get_ext_by_NID(c, NID_subject_alt_name, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(c, i));
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	assert_non_null(ext);
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(c, key, EVP_sha256()) > 0);
	free(san);
	return c;
}

/* Store cert for addr with source. */
static void
store_cert_as(struct milter_fixture *fx, const char *addr, X509 *cert, const char *source)
{
	struct key_record r;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(cert, r.fingerprint);
	r.public_data = smime_cert_to_der(cert, &r.public_len);
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.source = (char *)source;
	assert_int_equal(keystore_put(fx->ks, &r, NOW, NULL), CABLES_OK);
	free(r.public_data);
}

/*
 * A certificate the store holds for one address (here: found by DNSSEC for
 * mallory's own address) vouches for that address only: mallory's
 * self-made certificate also naming ceo@c.test does not make a message
 * From ceo@c.test validly signed, nor is it harvested as ceo's key.
 */
static void
test_known_certificate_vouches_only_for_its_address(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509 *m_cert = cert_naming(alice_cert, alice_key, "mallory@evil.test,ceo@c.test");
	struct message *m;
	struct outcome out;

	fx->env.anchors = NULL;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	store_cert_as(fx, "mallory@evil.test", m_cert, "dns-dnssec");
	m = signed_message_by(fx, "CEO <ceo@c.test>", m_cert, alice_key);
	run(fx, m, &out);
	if (strstr(out.detail, "signature=valid") != NULL || strstr(out.detail, "harvest=harvested") != NULL)
		fail_msg("%s", out.detail);
	assert_int_equal(stored(fx, "ceo@c.test", NULL), 0);
	message_free(m);
	/* From mallory herself it is valid, and (already held) not harvested again. */
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	m = signed_message_by(fx, "mallory@evil.test", m_cert, alice_key);
	run(fx, m, &out);
	if (strstr(out.detail, "signature=valid") == NULL)
		fail_msg("%s", out.detail);
	message_free(m);
	X509_free(m_cert);
	milter_fixture_free(fx);
}

/*
 * A certificate trusted only because the store holds it for one address
 * (here the attacker's own, as DNSSEC might give it) vouches for that
 * address alone in a protected From, however many others it names, also
 * inside a group; through TrustAnchors it speaks for every name in it.
 */
static void
test_stored_certificate_vouches_only_for_its_own_address(void **state)
{
	const struct {
		const char *inner;
		bool anchored;
		const char *signature;		/* in the log line: judged for the first address, group members too */
		const char *want, *not_want;	/* in the MTA's operations */
	} cases[] = {
		{ "attacker@evil.test, CEO <ceo@a.test>", false, "signature=valid",
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From" },
		{ "X: ceo@a.test;, attacker@evil.test", false, "signature=untrusted",
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From" },
		{ "CEO <ceo@a.test>, attacker@evil.test", false, "signature=untrusted",
		    "; from=outer; protected-identity=\"ceo@a.test\"", "chg From" },
		{ "attacker@evil.test, CEO <ceo@a.test>", true, "signature=valid",
		    "chg From 1 attacker@evil.test, CEO <ceo@a.test>\n", "from=outer" },
	};
	X509 *m_cert = cert_naming(alice_cert, alice_key, "attacker@evil.test,ceo@a.test");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = milter_fixture_new("HarvestCertificates no", NOW);
		X509_STORE *anchors = NULL;
		struct message *m;
		struct outcome out;

		fx->env.anchors = NULL;
		if (cases[i].anchored) {
			anchors = X509_STORE_new();
			X509_STORE_add_cert(anchors, m_cert);
			fx->env.anchors = anchors;
		}
		milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
		store_cert_as(fx, "attacker@evil.test", m_cert, "dns-dnssec");
		m = hp_message(fx, "attacker@evil.test", cases[i].inner, m_cert, alice_key);
		run(fx, m, &out);
		assert_string_equal(out.what, "decrypted");
		if (strstr(out.detail, cases[i].signature) == NULL || strstr(fx->fake.ops.data, cases[i].want) == NULL ||
		    strstr(fx->fake.ops.data, cases[i].not_want) != NULL)
			fail_msg("case %zu:\n%s\n%s", i, fx->fake.ops.data, out.detail);
		message_free(m);
		fx->env.anchors = NULL;
		X509_STORE_free(anchors);
		milter_fixture_free(fx);
	}
	X509_free(m_cert);
	(void)state;
}

/*
 * Replaying an old signed message (an older certificate, still in its
 * validity) does not roll the pin back from the newer certificate that
 * replaced it, nor delete the newer one, even under On-KeyChange accept.
 */
static void
test_harvest_refuses_an_older_certificate(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509_STORE *anchors = X509_STORE_new(), *anchors_old = X509_STORE_new();
	X509 *older;
	EVP_PKEY *older_key;
	char newer_fpr[65], fpr[65];
	struct key_pin pin;
	struct message *m;
	struct outcome out;

	assert_int_equal(smime_generate("alice@b.test", SMIME_ALGO_P256, 365, NOW - 100 * 86400, &older, &older_key,
	    NULL), CABLES_OK);
	/* Both self-signed with one subject: a store each, as if a CA had issued both. */
	X509_STORE_add_cert(anchors, alice_cert);
	X509_STORE_add_cert(anchors_old, older);
	fx->env.anchors = anchors_old;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	smime_cert_fingerprint(alice_cert, newer_fpr);
	/* The older certificate first, then the renewed one: a key change, accepted. */
	m = signed_message_by(fx, "alice@b.test", older, older_key);
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "harvest=harvested"));
	message_free(m);
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	fx->env.anchors = anchors;
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "harvest=harvested"));
	message_free(m);
	/* The old message again. */
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	fx->env.anchors = anchors_old;
	m = signed_message_by(fx, "alice@b.test", older, older_key);
	run(fx, m, &out);
	if (strstr(out.detail, "harvest=refused") == NULL)
		fail_msg("%s", out.detail);
	assert_int_equal(stored(fx, "alice@b.test", fpr), 1);
	assert_string_equal(fpr, newer_fpr);
	assert_int_equal(keystore_pin_get(fx->ks, "alice@b.test", "smime", &pin, NULL), CABLES_OK);
	assert_string_equal(pin.fingerprint, newer_fpr);
	key_pin_release(&pin);
	message_free(m);
	X509_free(older);
	EVP_PKEY_free(older_key);
	X509_STORE_free(anchors);
	X509_STORE_free(anchors_old);
	milter_fixture_free(fx);
}

/*
 * Our RecipientDelimiter says nothing about a remote domain's mailboxes: a
 * certificate for bob-x@b.test (someone else's mailbox there) is not bob's.
 */
static void
test_harvest_keeps_sub_addresses_apart(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("RecipientDelimiter +-\n", NOW);
	X509_STORE *anchors = X509_STORE_new();
	X509 *x_cert = cert_naming(alice_cert, alice_key, "bob-x@b.test");
	struct message *m;
	struct outcome out;

	X509_STORE_add_cert(anchors, x_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	m = signed_message_by(fx, "bob-x@b.test", x_cert, alice_key);
	run(fx, m, &out);
	if (strstr(out.detail, "harvest=harvested") != NULL)
		fail_msg("%s", out.detail);
	assert_int_equal(stored(fx, "bob@b.test", NULL), 0);
	message_free(m);
	X509_free(x_cert);
	X509_STORE_free(anchors);
	milter_fixture_free(fx);
}

/* The fingerprint of the certificate keys_cert picks to encrypt to addr, or "" for none. */
static void
encrypts_to(struct milter_fixture *fx, const char *addr, char fpr[65])
{
	cables_status st;
	char *why = NULL;
	bool epoch;
	X509 *c = keys_cert(&fx->env, addr, KEY_ENCRYPT, &epoch, &why, &st, NULL);

	assert_int_equal(st, CABLES_OK);
	fpr[0] = '\0';
	if (c != NULL)
		smime_cert_fingerprint(c, fpr);
	X509_free(c);
	free(why);
}

/* keyd's answer for one address: the fingerprints a and b (either may be NULL). */
static const struct keyd_found *
answered(struct keyd_found *f, const char *a, const char *b)
{
	memset(f, 0, sizeof(*f));
	if (a != NULL)
		strlcpy_c(f->fpr[f->n++], a, sizeof(f->fpr[0]));
	if (b != NULL)
		strlcpy_c(f->fpr[f->n++], b, sizeof(f->fpr[0]));
	return f;
}

/*
 * A harvested certificate ranks below discovery: it encrypts only when
 * cables-keyd has answered with it for this message (keyd looked for a key
 * the recipient's domain publishes and found none), and only while it is
 * the pinned key: after a DNSSEC key took the pin (keyd), the harvested one
 * that held it is not chosen even if named; and one stored unpinned (before
 * harvesting was pinned) waits for its next signed message to be pinned.
 */
static void
test_harvested_key_is_used_only_when_keyd_confirms_it_and_while_pinned(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);
	X509_STORE *anchors = X509_STORE_new(), *anchors_d = X509_STORE_new();
	X509 *d_cert = cert_naming(alice_cert, alice_key, "dave@c.test");
	struct keyd_found confirmed;
	struct key_pin pin;
	char first[65], second[65], d_fpr[65], fpr[65];
	struct message *m;
	struct outcome out;

	X509_STORE_add_cert(anchors, alice_cert);
	X509_STORE_add_cert(anchors_d, d_cert);
	fx->env.anchors = anchors;
	milter_fixture_store(fx, "bob@a.test", bob_cert, bob_key);
	smime_cert_fingerprint(alice_cert, first);
	smime_cert_fingerprint(alice2_cert, second);
	smime_cert_fingerprint(d_cert, d_fpr);
	m = signed_message(fx, "alice@b.test");
	run(fx, m, &out);
	assert_non_null(strstr(out.detail, "harvest=harvested"));
	message_free(m);
	/* Pinned, but keyd has not been asked: not used (the recipient goes to keyd). */
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, "");
	/* keyd answered with another key only: still not this one. */
	fx->env.confirmed = answered(&confirmed, second, NULL);
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, "");
	/* keyd found nothing published and answered with the harvested key: used. */
	fx->env.confirmed = answered(&confirmed, first, NULL);
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, first);
	fx->env.confirmed = NULL;
	/* keyd finds alice2 by DNSSEC: the pin moves to it. */
	store_cert_as(fx, "alice@b.test", alice2_cert, "dns-dnssec");
	memset(&pin, 0, sizeof(pin));
	pin.address = "alice@b.test";
	strlcpy_c(pin.format, "smime", sizeof(pin.format));
	strlcpy_c(pin.fingerprint, second, sizeof(pin.fingerprint));
	pin.source = "dns-dnssec";
	pin.first_seen = pin.last_seen = NOW;
	assert_int_equal(keystore_pin_set(fx->ks, &pin, NULL), CABLES_OK);
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, "");
	/* Named by keyd but no longer pinned: the harvested key is not used. */
	fx->env.confirmed = answered(&confirmed, first, NULL);
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, "");
	fx->env.confirmed = answered(&confirmed, first, second);
	encrypts_to(fx, "alice@b.test", fpr);
	assert_string_equal(fpr, second);
	fx->env.confirmed = NULL;
	/* Harvested, unpinned (stored by an older version): not used until its next signed message pins it. */
	store_cert_as(fx, "dave@c.test", d_cert, "harvested");
	fx->env.confirmed = answered(&confirmed, d_fpr, NULL);
	encrypts_to(fx, "dave@c.test", fpr);
	assert_string_equal(fpr, "");
	fx->env.confirmed = NULL;
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	fx->env.anchors = anchors_d;
	m = signed_message_by(fx, "dave@c.test", d_cert, alice_key);
	run(fx, m, &out);
	if (strstr(out.detail, "harvest=unchanged") == NULL || strstr(out.detail, "pinned now") == NULL)
		fail_msg("%s", out.detail);
	message_free(m);
	encrypts_to(fx, "dave@c.test", fpr);
	assert_string_equal(fpr, "");
	fx->env.confirmed = answered(&confirmed, d_fpr, NULL);
	encrypts_to(fx, "dave@c.test", fpr);
	assert_string_equal(fpr, d_fpr);
	fx->env.confirmed = NULL;
	X509_free(d_cert);
	X509_STORE_free(anchors);
	X509_STORE_free(anchors_d);
	milter_fixture_free(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decrypts_for_the_local_recipient_byte_for_byte),
		cmocka_unit_test(test_the_key_a_recipient_info_names_is_used),
		cmocka_unit_test(test_no_plaintext_for_a_recipient_the_sender_did_not_encrypt_to),
		cmocka_unit_test(test_two_targets_both_local_are_decrypted),
		cmocka_unit_test(test_undecryptable_input_passes_with_the_reason),
		cmocka_unit_test(test_forged_result_fields_are_removed),
		cmocka_unit_test(test_inner_signature_is_verified_and_kept),
		cmocka_unit_test(test_valid_signatures_are_harvested_for_remote_addresses),
		cmocka_unit_test(test_harvest_only_for_the_from_address),
		cmocka_unit_test(test_harvest_key_change_follows_on_key_change),
		cmocka_unit_test(test_harvest_never_replaces_an_imported_key),
		cmocka_unit_test(test_harvest_never_replaces_a_dnssec_pin),
		cmocka_unit_test(test_known_certificate_vouches_only_for_its_address),
		cmocka_unit_test(test_stored_certificate_vouches_only_for_its_own_address),
		cmocka_unit_test(test_harvest_refuses_an_older_certificate),
		cmocka_unit_test(test_harvest_keeps_sub_addresses_apart),
		cmocka_unit_test(test_harvested_key_is_used_only_when_keyd_confirms_it_and_while_pinned),
		cmocka_unit_test(test_plain_signed_mail_is_verified),
		cmocka_unit_test(test_protected_subject_is_restored),
		cmocka_unit_test(test_protected_from_needs_its_own_signature),
		cmocka_unit_test(test_opaque_signed_data_vouches_for_no_protected_field),
		cmocka_unit_test(test_failures_on_our_side_temp_fail),
	};

	return cmocka_run_group_tests_name("inbound", tests, group_setup, group_teardown);
}
