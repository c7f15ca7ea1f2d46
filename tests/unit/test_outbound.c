/*
 * test_outbound - the outbound decision and rewrite, driven without an MTA:
 * a recording fake stands in for smfi_*, a real key store and real
 * certificates stand behind it.
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
#include "keystore.h"
#include "message.h"
#include "mime.h"
#include "dispatch.h"
#include "outbound.h"
#include "smime.h"

#define NOW ((time_t)1790000000)

static X509 *bob_cert, *alice_cert;
static EVP_PKEY *bob_key, *alice_key;

static int
group_setup(void **state)
{
	mime_init();
	if (smime_generate("bob@b.test", SMIME_ALGO_P256, 365, NOW, &bob_cert, &bob_key, NULL) != CABLES_OK ||
	    smime_generate("alice@a.test", SMIME_ALGO_P256, 365, NOW, &alice_cert, &alice_key, NULL) != CABLES_OK)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	X509_free(bob_cert);
	X509_free(alice_cert);
	EVP_PKEY_free(bob_key);
	EVP_PKEY_free(alice_key);
	return 0;
}

static struct milter_fixture *
fixture_new(const char *extra_config)
{
	return milter_fixture_new(extra_config, NOW);
}

static void
store(struct milter_fixture *fx, const char *addr, X509 *cert)
{
	milter_fixture_store(fx, addr, cert, NULL);
}

/* A message from sender to the comma-separated recipients with a small text body. */
static struct message *
new_message(struct milter_fixture *fx, const char *sender, bool sender_local, const char *rcpts)
{
	struct message *m = message_new(fx->cfg, sender, sender_local, false);
	char *copy = xstrdup(rcpts), *save = NULL;

	message_set_queue_id(m, "QID1");
	for (char *r = strtok_r(copy, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save))
		assert_true(message_add_rcpt(m, fx->cfg, r, NULL));
	free(copy);
	message_add_header(m, "From", "alice@a.test");
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "text/plain;\n\tcharset=utf-8");
	message_add_header(m, "Subject", "hello");
	message_add_body(m, "Hello Bob.\r\nPLAINTEXT-MARKER\r\n", 30);
	return m;
}

/* As the milter does: plan at end of header; at end of message forged fields go, then the plan's end. */
static void
run(struct milter_fixture *fx, struct message *m, struct outcome *out)
{
	outbound_plan(m, &fx->env, out);
	if (out->verdict != VERDICT_CONTINUE) {
		if (message_forged_fields(m) == 0)
			return;
		m->early = *out;
		m->have_early = true;
	}
	dispatch_eom(m, &fx->env, &fx->fake.mta, out);
}

static const char expected_entity[] =
    "MIME-Version: 1.0\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\n"
    "Hello Bob.\r\nPLAINTEXT-MARKER\r\n";

static void
assert_body_decrypts(struct milter_fixture *fx, X509 *cert, EVP_PKEY *key, const char *expect)
{
	size_t der_len, plain_len;
	uint8_t *der = test_b64_decode(fx->fake.body.data, fx->fake.body.len, &der_len), *plain;

	assert_non_null(der);
	plain = test_cms_decrypt(der, der_len, cert, key, &plain_len);
	assert_non_null(plain);
	assert_int_equal(plain_len, strlen(expect));
	assert_memory_equal(plain, expect, plain_len);
	free(plain);
	free(der);
}

static void
test_encrypts_when_every_remote_recipient_has_a_key(void **state)
{
	struct milter_fixture *fx = fixture_new("");
	struct message *m;
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	m = new_message(fx, "alice@a.test", true, "<bob@b.test>");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "encrypted");
	assert_non_null(strstr(out.detail, "format=smime cipher=aes256-cbc recipients=1"));
	assert_body_decrypts(fx, bob_cert, bob_key, expected_entity);
	assert_null(strstr(fx->fake.body.data, "PLAINTEXT-MARKER"));
	/* Content-Type replaced in place, the other fields added, MIME-Version kept, no trace field. */
	assert_string_equal(fx->fake.ops.data,
	    "chg Content-Type 1 application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
	    "add Content-Transfer-Encoding base64\n"
	    "add Content-Disposition attachment; filename=smime.p7m\n"
	    "add Content-Description S/MIME Encrypted Message\n");
	message_free(m);
	milter_fixture_free(fx);
}

/*
 * Issue 16: header protection and padding on (the shipped defaults): the
 * protected fields and hp="cipher" inside, the legacy display element, a
 * padding field first; outside, Subject "[...]".  A header section lib/hp
 * cannot protect faithfully temp-fails: nothing leaves with its Subject
 * outside by accident.
 */
static void
test_header_protection_and_padding(void **state)
{
	struct milter_fixture *fx = fixture_new("HeaderProtection baseline\nPadding buckets\n");
	struct message *m;
	struct outcome out;
	size_t der_len, plain_len;
	uint8_t *der, *plain;
	const char *inner;

	store(fx, "bob@b.test", bob_cert);
	m = new_message(fx, "alice@a.test", true, "<bob@b.test>");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_non_null(strstr(out.detail, " hp=baseline hidden=1 legacy=text pad="));
	assert_non_null(strstr(fx->fake.ops.data, "chg Subject 1 [...]\n"));
	der = test_b64_decode(fx->fake.body.data, fx->fake.body.len, &der_len);
	plain = test_cms_decrypt(der, der_len, bob_cert, bob_key, &plain_len);
	assert_non_null(plain);
	plain = realloc(plain, plain_len + 1);
	plain[plain_len] = '\0';
	assert_int_equal(strncmp((char *)plain, "Content-Padding: ", 17), 0);
	inner = strstr((char *)plain, "\r\nFrom: alice@a.test\r\n");
	assert_non_null(inner);
	assert_non_null(strstr(inner,
	    "\r\nSubject: hello\r\nHP-Outer: From: alice@a.test\r\nHP-Outer: Subject: [...]\r\n"));
	assert_non_null(strstr(inner,
	    "Content-Type: text/plain;\r\n\tcharset=utf-8; hp-legacy-display=\"1\"; hp=\"cipher\"\r\n\r\n"
	    "Subject: hello\r\n\r\nHello Bob.\r\nPLAINTEXT-MARKER\r\n"));
	/* The wire size fills a bucket (4 KiB for so little), well above the unpadded ~1 KB. */
	assert_true(fx->fake.body.len > 3000 && fx->fake.body.len <= 4096);
	free(plain);
	free(der);
	message_free(m);
	milter_fixture_free(fx);

	/* A control character in a field: temp-fail with the reason, nothing replaced. */
	fx = fixture_new("HeaderProtection baseline\n");
	store(fx, "bob@b.test", bob_cert);
	m = new_message(fx, "alice@a.test", true, "<bob@b.test>");
	message_add_header(m, "Keywords", "a\001b");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_int_equal(fx->fake.body.len, 0);
	message_free(m);
	milter_fixture_free(fx);
	(void)state;
}

/* Issue 15 item 5: a recipient is classified once, normalised; one that cannot be is refused, never local. */
static void
test_recipients_are_classified_or_refused(void **state)
{
	static const struct { const char *arg; bool added, local; const char *norm; } cases[] = {
		{ "<bob@partner.example.>", true, false, "bob@partner.example" },
		{ "<\"Bob\"@Partner.Example>", true, false, "bob@partner.example" },
		{ "<carol@A.TEST.>", true, true, "carol@a.test" },		/* local, however written */
		{ "<postmaster>", true, true, NULL },			/* qualified by the MTA: local */
		{ "<bob@[192.0.2.1]>", false, false, NULL },		/* an address literal */
		{ "<bob@xn--zz.example>", false, false, NULL },		/* IDNA refuses it */
		{ "<\"a>b\"@partner.example>", false, false, NULL },	/* not parsed: not local by default */
		{ "<>", false, false, NULL },
	};
	struct milter_fixture *fx = fixture_new("");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
		bool added = message_add_rcpt(m, fx->cfg, cases[i].arg, NULL);

		if (added != cases[i].added)
			fail_msg("%s: %s", cases[i].arg, added ? "added" : "refused");
		assert_int_equal(m->nrcpts, added ? 1 : 0);
		if (added) {
			assert_int_equal(m->rcpts[0].local, cases[i].local);
			if (cases[i].norm == NULL)
				assert_null(m->rcpts[0].norm);
			else
				assert_string_equal(m->rcpts[0].norm, cases[i].norm);
		}
		message_free(m);
	}
	milter_fixture_free(fx);
	(void)state;
}

/* Outbound and mixed mail loses forged verdicts too: a local Cc must not get them. */
static void
test_forged_verdicts_are_removed_in_every_direction(void **state)
{
	static const char *const rcpts[] = { "<bob@b.test>", "<bob@b.test>,<carol@a.test>", "<dave@d.test>" };

	for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++) {
		struct milter_fixture *fx = fixture_new("");
		struct message *m;
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		m = new_message(fx, i == 2 ? "mallory@evil.test" : "alice@a.test", i != 2, rcpts[i]);
		message_add_header(m, "X-Cables", "decrypted; format=smime; signature=valid; signer=ceo@a.test");
		message_add_header(m, "Authentication-Results", "mx.a.test; smime=pass body.smime-identifier=\"ceo@a.test\"");
		message_add_header(m, "Authentication-Results", "mx.b.test; dkim=pass");
		run(fx, m, &out);
		if (strstr(fx->fake.ops.data, "chg X-Cables 1 (delete)\nchg Authentication-Results 1 (delete)\n") !=
		    fx->fake.ops.data)
			fail_msg("case %zu: %s", i, fx->fake.ops.data);
		assert_null(strstr(fx->fake.ops.data, "Authentication-Results 2"));
		assert_non_null(strstr(out.detail, "forged fields removed: 1 X-Cables, 1 Authentication-Results"));
		assert_true(out.verdict == VERDICT_MODIFIED);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_rewrite_replaces_duplicates_and_drops_other_content_fields(void **state)
{
	struct milter_fixture *fx = fixture_new("Cipher aes256-gcm");
	struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	assert_true(message_add_rcpt(m, fx->cfg, "<bob@b.test>", NULL));
	message_add_header(m, "Content-Type", "text/plain");
	message_add_header(m, "Content-ID", "<x@y>");
	message_add_header(m, "content-type", "text/html");
	message_add_header(m, "Content-Transfer-Encoding", "8bit");
	message_add_header(m, "Content-ID", "<z@y>");
	message_add_body(m, "x\r\n", 3);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(fx->fake.ops.data,
	    "chg Content-Type 1 application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m\n"
	    "chg Content-Type 2 (delete)\n"
	    "chg Content-Transfer-Encoding 1 base64\n"
	    "add Content-Disposition attachment; filename=smime.p7m\n"
	    "add Content-Description S/MIME Encrypted Message\n"
	    "chg Content-ID 2 (delete)\n"
	    "chg Content-ID 1 (delete)\n"
	    "add MIME-Version 1.0\n");
	assert_non_null(strstr(out.detail, "format=smime cipher=aes256-gcm recipients=1"));
	assert_body_decrypts(fx, bob_cert, bob_key,
	    "Content-Type: text/plain\r\nContent-ID: <x@y>\r\ncontent-type: text/html\r\n"
	    "Content-Transfer-Encoding: 8bit\r\nContent-ID: <z@y>\r\n\r\nx\r\n");
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_leading_space_values_are_kept_exactly(void **state)
{
	struct milter_fixture *fx = fixture_new("");
	struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	m->header_leadspc = true;
	assert_true(message_add_rcpt(m, fx->cfg, "<bob@b.test>", NULL));
	message_add_header(m, "Content-Type", "text/plain");	/* "Content-Type:text/plain" on the wire */
	message_add_header(m, "Content-Transfer-Encoding", "  7bit");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_body_decrypts(fx, bob_cert, bob_key,
	    "Content-Type:text/plain\r\nContent-Transfer-Encoding:  7bit\r\n\r\n");
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_passes_what_it_should_not_touch(void **state)
{
	static const struct {
		const char *what;
		const char *config;
		const char *sender;
		bool local;
		const char *rcpts;
		const char *detail;
	} cases[] = {
		{ "remote sender", "", "mallory@evil.test", false, "bob@b.test", "sender mallory@evil.test is not local" },
		{ "null sender", "", "", false, "bob@b.test", "sender <> is not local" },
		{ "local recipients only", "", "alice@a.test", true, "carol@a.test,dan@A.TEST", "no remote recipients" },
		{ "postmaster", "", "alice@a.test", true, "postmaster", "no remote recipients" },
		{ "policy never", "DefaultPolicy never", "alice@a.test", true, "bob@b.test", "policy never for every remote recipient" },
		{ "never by domain", "Policy b.test never", "alice@a.test", true, "bob@b.test,x@b.test", "policy never for every remote recipient" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = fixture_new(cases[i].config);
		struct message *m = new_message(fx, cases[i].sender, cases[i].local, cases[i].rcpts);
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		outbound_plan(m, &fx->env, &out);
		if (out.verdict != VERDICT_ACCEPT || strcmp(out.what, "pass") != 0 ||
		    strcmp(out.detail, cases[i].detail) != 0)
			fail_msg("case '%s': verdict %d what %s detail '%s'", cases[i].what, out.verdict, out.what, out.detail);
		assert_int_equal(fx->fake.ops.len, 0);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_missing_key_under_encrypt_sends_plaintext_and_says_why(void **state)
{
	struct milter_fixture *fx = fixture_new("DefaultPolicy encrypt");
	struct message *m = new_message(fx, "alice@a.test", true, "bob@b.test,carol@c.test");
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	outbound_plan(m, &fx->env, &out);
	assert_int_equal(out.verdict, VERDICT_ACCEPT);
	assert_string_equal(out.what, "plaintext");
	assert_string_equal(out.detail,
	    "no usable S/MIME certificate for carol@c.test: no certificate (policy encrypt)");
	message_free(m);
	milter_fixture_free(fx);
}

/*
 * keyd cannot be asked (no socket) and On-KeydError says accept: a domain
 * the store remembers as encrypting still gets no plaintext; one never
 * remembered, or whose memory ran out, does.
 */
static void
test_keyd_error_at_a_remembered_domain_is_as_under_require(void **state)
{
	const struct {
		const char *what;
		long long last_seen;	/* of c.test; 0: not remembered */
		enum verdict verdict;
	} cases[] = {
		{ "remembered", NOW - 86400, VERDICT_TEMPFAIL },
		{ "not remembered", 0, VERDICT_ACCEPT },
		{ "memory ran out", NOW - 91 * 86400LL, VERDICT_ACCEPT },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = fixture_new("DefaultPolicy encrypt\nOn-KeydError accept");
		struct message *m;
		struct outcome out;

		/* The fixture's config has KeydSocket none: a socket nobody listens on instead. */
		fx->cfg->keyd_socket = xasprintf("%s/no-keyd.sock", fx->dir);
		if (cases[i].last_seen != 0)
			assert_int_equal(keystore_encrypting_note(fx->ks, "c.test", "dns-dnssec", (time_t)cases[i].last_seen,
			    NULL), CABLES_OK);
		m = new_message(fx, "alice@a.test", true, "carol@c.test");
		outbound_plan(m, &fx->env, &out);
		if (out.verdict == VERDICT_CONTINUE)
			outbound_finish(m, &fx->env, &fx->fake.mta, &out);
		if (out.verdict != cases[i].verdict)
			fail_msg("case '%s': verdict %d what %s detail '%s'", cases[i].what, out.verdict, out.what, out.detail);
		if (cases[i].verdict == VERDICT_TEMPFAIL) {
			assert_string_equal(out.rcode, "451");
			assert_non_null(strstr(out.detail, "c.test is remembered as encrypting since"));
			assert_non_null(strstr(out.detail, "(policy require)"));
			assert_int_equal(fx->fake.body.len, 0);
		} else {
			assert_string_equal(out.what, "plaintext");
		}
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_missing_key_under_require_is_refused(void **state)
{
	const struct {
		const char *config;
		enum verdict verdict;
		const char *rcode, *xcode;
	} cases[] = {
		{ "DefaultPolicy require", VERDICT_TEMPFAIL, "451", "4.7.1" },
		{ "Policy c.test require\nOn-KeyNotFound tempfail", VERDICT_TEMPFAIL, "451", "4.7.1" },
		{ "DefaultPolicy require\nOn-KeyNotFound reject", VERDICT_REJECT, "550", "5.7.1" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = fixture_new(cases[i].config);
		struct message *m = new_message(fx, "alice@a.test", true, "carol@c.test");
		struct outcome out;

		outbound_plan(m, &fx->env, &out);
		assert_int_equal(out.verdict, VERDICT_CONTINUE);	/* the body may be pre-encrypted */
		outbound_finish(m, &fx->env, &fx->fake.mta, &out);
		assert_int_equal(out.verdict, cases[i].verdict);
		assert_string_equal(out.rcode, cases[i].rcode);
		assert_string_equal(out.xcode, cases[i].xcode);
		assert_non_null(strstr(out.reply, "no usable S/MIME certificate for carol@c.test"));
		assert_non_null(strstr(out.detail, "(policy require)"));
		assert_int_equal(fx->fake.body.len, 0);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_mixed_recipients_under_require_are_refused(void **state)
{
	const char *const rcpts[] = { "bob@b.test,carol@a.test", "bob@b.test,x@never.test" };
	const char *const why[] = { "split delivery", "policy never and others" };

	for (size_t i = 0; i < 2; i++) {
		struct milter_fixture *fx = fixture_new("DefaultPolicy require\nPolicy never.test never");
		struct message *m = new_message(fx, "alice@a.test", true, rcpts[i]);
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		run(fx, m, &out);
		assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
		assert_non_null(strstr(out.detail, why[i]));
		message_free(m);
		milter_fixture_free(fx);
	}
}

/* Issue 15 item 7: armor around a literal data packet (plaintext) is not "already encrypted". */
static void
test_armored_plaintext_is_not_already_encrypted(void **state)
{
	/* A literal data packet (tag 11), and a session-key packet cut short: both armored as PGP MESSAGE. */
	static const char *const bodies[] = {
		"\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nywxiAAAAAABTZWNyZXQ=\r\n-----END PGP MESSAGE-----\r\n",
		"\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA5Q2\r\n-----END PGP MESSAGE-----\r\n",
	};
	static const char *const why[] = { "packet tag 11 where a session-key", "cut short" };

	for (size_t i = 0; i < 2; i++) {
		struct milter_fixture *fx = fixture_new("DefaultPolicy require");
		struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
		struct outcome out;

		assert_true(message_add_rcpt(m, fx->cfg, "carol@c.test", NULL));
		message_add_header(m, "Content-Type", "text/plain; charset=us-ascii");
		message_add_body(m, bodies[i], strlen(bodies[i]));
		run(fx, m, &out);
		assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
		assert_non_null(strstr(out.detail, "(policy require); labelled pgp-inline but not an encrypted OpenPGP message"));
		if (strstr(out.detail, why[i]) == NULL)
			fail_msg("case %zu: %s", i, out.detail);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_already_encrypted_content_passes_under_require(void **state)
{
	struct milter_fixture *fx = fixture_new("DefaultPolicy require");
	struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
	/* A session-key packet (tag 1, key ID 1234567890abcdef), then encrypted data (tag 18). */
	const char *body = "\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwQwDEjRWeJCrze8BAADSBQGqu8zd\r\n"
	    "-----END PGP MESSAGE-----\r\n";
	struct outcome out;

	assert_true(message_add_rcpt(m, fx->cfg, "carol@c.test", NULL));
	message_add_header(m, "Content-Type", "text/plain; charset=us-ascii");
	message_add_body(m, body, strlen(body));
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_ACCEPT);
	assert_string_equal(out.what, "pass");
	assert_string_equal(out.detail, "already encrypted (pgp-inline)");
	assert_int_equal(fx->fake.body.len, 0);
	message_free(m);
	milter_fixture_free(fx);
}

/* Content labelled S/MIME passes only when the whole body is one well-formed envelope. */
static void
test_mislabelled_smime_is_encrypted_under_require(void **state)
{
	struct smime_encrypt_opts opts = { CIPHER_AES256_CBC, RSA_PAD_PKCS1 };
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct entity_src src;
	struct mem_sink ms;
	const char *tails[] = { "", "PLAINTEXT-MARKER\r\n" };

	mem_sink_init(&ms);
	sk_X509_push(certs, bob_cert);
	entity_src_init(&src);
	entity_src_mem(&src, expected_entity, strlen(expected_entity));
	assert_int_equal(smime_encrypt(&opts, certs, &src, &ms.sink, NULL), CABLES_OK);
	for (size_t i = 0; i < 2; i++) {
		struct milter_fixture *fx = fixture_new("DefaultPolicy require");
		struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		assert_true(message_add_rcpt(m, fx->cfg, "bob@b.test", NULL));
		message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data");
		message_add_header(m, "Content-Transfer-Encoding", "base64");
		message_add_body(m, ms.data.data, ms.data.len);
		message_add_body(m, tails[i], strlen(tails[i]));
		run(fx, m, &out);
		if (i == 0) {
			assert_int_equal(out.verdict, VERDICT_ACCEPT);
			assert_string_equal(out.detail, "already encrypted (smime-enveloped)");
		} else {
			assert_int_equal(out.verdict, VERDICT_MODIFIED);
			assert_string_equal(out.what, "encrypted");
			assert_non_null(strstr(out.detail, "; labelled S/MIME but not well-formed: bad base64"));
			assert_null(strstr(fx->fake.body.data, "PLAINTEXT-MARKER"));
		}
		message_free(m);
		milter_fixture_free(fx);
	}
	mem_sink_release(&ms);
	sk_X509_free(certs);
}

static void
test_oversized_body(void **state)
{
	const char *const configs[] = { "DefaultPolicy require\nMaxMessageSize 16", "DefaultPolicy encrypt\nMaxMessageSize 16" };
	const enum verdict verdicts[] = { VERDICT_REJECT, VERDICT_ACCEPT };

	for (size_t i = 0; i < 2; i++) {
		struct milter_fixture *fx = fixture_new(configs[i]);
		struct message *m;
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		m = new_message(fx, "alice@a.test", true, "bob@b.test");	/* 30-byte body */
		run(fx, m, &out);
		assert_int_equal(out.verdict, verdicts[i]);
		assert_non_null(strstr(out.detail, "larger than MaxMessageSize (16 bytes)"));
		if (i == 0) {
			assert_string_equal(out.rcode, "552");
			assert_string_equal(out.xcode, "5.3.4");
		} else {
			assert_string_equal(out.what, "plaintext");
		}
		assert_int_equal(fx->fake.body.len, 0);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_internal_errors_follow_on_internal_error_but_never_leak(void **state)
{
	const struct {
		const char *config;
		bool fail_after_start;
		enum verdict verdict;
	} cases[] = {
		{ "", false, VERDICT_TEMPFAIL },
		{ "On-InternalError reject", false, VERDICT_REJECT },
		{ "On-InternalError accept", false, VERDICT_ACCEPT },
		/* accept is refused when a require recipient would get plaintext... */
		{ "On-InternalError accept\nDefaultPolicy require", false, VERDICT_TEMPFAIL },
		/* ...and once the MTA has part of a new body. */
		{ "On-InternalError accept", true, VERDICT_TEMPFAIL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = fixture_new(cases[i].config);
		struct message *m;
		struct outcome out;

		store(fx, "bob@b.test", bob_cert);
		m = new_message(fx, "alice@a.test", true, "bob@b.test");
		if (cases[i].fail_after_start) {
			fx->fake.fail_body_at = 1;
		} else {
			/* A spool error before the end of the message. */
			m->body_status = CABLES_ERR_IO;
			strcpy(m->body_err.msg, "spool write in /x: No space left on device");
		}
		run(fx, m, &out);
		if (out.verdict != cases[i].verdict)
			fail_msg("case %zu: verdict %d, detail %s", i, out.verdict, out.detail);
		assert_non_null(strstr(out.detail, "internal error"));
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_header_change_failure_temp_fails(void **state)
{
	struct milter_fixture *fx = fixture_new("On-InternalError accept");
	struct message *m;
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	m = new_message(fx, "alice@a.test", true, "bob@b.test");
	fx->fake.fail_headers = true;
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_non_null(strstr(out.detail, "refused a header change"));
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_key_store_failure_is_an_internal_error(void **state)
{
	struct milter_fixture *fx = fixture_new("");
	struct message *m = new_message(fx, "alice@a.test", true, "bob@b.test");
	struct outcome out;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(fx->cfg->key_store, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE keys", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	outbound_plan(m, &fx->env, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_string_equal(out.rcode, "451");
	assert_non_null(strstr(out.detail, "internal error: key store"));
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_encrypt_to_self_adds_the_senders_certificate(void **state)
{
	struct milter_fixture *fx = fixture_new("EncryptToSelf yes");
	struct message *m;
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	store(fx, "alice@a.test", alice_cert);
	/* Two spellings of bob share one certificate: encrypted to once. */
	m = new_message(fx, "Alice@A.test", true, "bob@b.test,Bob+news@B.TEST");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_non_null(strstr(out.detail, "recipients=1 +self"));
	assert_body_decrypts(fx, bob_cert, bob_key, expected_entity);
	assert_body_decrypts(fx, alice_cert, alice_key, expected_entity);
	assert_null(strstr(fx->fake.ops.data, "X-Cables"));
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_reply_text_is_safe_for_libmilter(void **state)
{
	struct milter_fixture *fx = fixture_new("DefaultPolicy require");
	struct message *m = new_message(fx, "alice@a.test", true, "100%\x01@c.test");
	struct outcome out;

	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_non_null(strstr(out.reply, "100%%@c.test"));
	assert_null(strchr(out.reply, '\x01'));
	message_free(m);
	milter_fixture_free(fx);
}

/* The decrypted entity is multipart/signed around the original entity, and the signature verifies. */
static void
assert_signed_entity(const char *entity, size_t len, X509 *signer)
{
	char *boundary = NULL, *dir = test_tempdir(), *ct_end = strstr(entity, "\r\n\r\n");
	struct spool *sp = spool_new(dir, SPOOL_MEMORY_LIMIT, 0);
	struct smime_verify_ctx ctx = { NULL, NULL, NULL, NOW, dir };
	struct smime_sig sig;
	struct cables_err err;
	const char *q = strstr(entity, "boundary=\"");

	assert_non_null(ct_end);
	assert_true(strncmp(entity, "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"", 70) == 0);
	assert_non_null(q);
	boundary = xstrndup(q + 10, (size_t)(strchr(q + 10, '"') - q - 10));
	assert_non_null(memmem(entity, len, expected_entity, strlen(expected_entity)));
	spool_append(sp, entity, len, NULL);
	assert_int_equal(smime_verify_multipart(&ctx, boundary, sp, ct_end + 4 - entity, -1, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_UNTRUSTED);	/* verified; no store, no anchors */
	assert_int_equal(X509_cmp(sig.cert, signer), 0);
	smime_sig_release(&sig);
	spool_free(sp);
	free(boundary);
	test_rmdir(dir);
	free(dir);
}

static void
test_trusted_sender_signs_then_encrypts(void **state)
{
	struct milter_fixture *fx = fixture_new("Policy a.test Sign=yes");
	struct message *m;
	struct outcome out;
	size_t der_len, plain_len;
	uint8_t *der, *plain;

	store(fx, "bob@b.test", bob_cert);
	milter_fixture_store(fx, "alice@a.test", alice_cert, alice_key);
	m = new_message(fx, "alice@a.test", true, "bob@b.test");
	m->client_trusted = true;
	m->auth_login = xstrdup("alice@a.test");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_non_null(strstr(out.detail, "recipients=1 signed"));
	assert_non_null(strstr(out.detail, "format=smime cipher=aes256-cbc recipients=1 signed"));
	assert_null(strstr(fx->fake.ops.data, "X-Cables"));
	der = test_b64_decode(fx->fake.body.data, fx->fake.body.len, &der_len);
	plain = test_cms_decrypt(der, der_len, bob_cert, bob_key, &plain_len);
	assert_non_null(plain);
	assert_signed_entity((char *)plain, plain_len, alice_cert);
	free(plain);
	free(der);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_unencrypted_mail_is_clear_signed(void **state)
{
	struct milter_fixture *fx = fixture_new("Sign yes");
	struct message *m;
	struct outcome out;
	const char *b, *e;
	char *entity;

	milter_fixture_store(fx, "alice@a.test", alice_cert, alice_key);
	m = new_message(fx, "alice@a.test", true, "carol@c.test");	/* carol has no key: plaintext */
	m->client_trusted = true;
	m->auth_login = xstrdup("alice@a.test");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "signed");
	assert_non_null(strstr(out.detail, "not encrypted: no usable S/MIME certificate for carol@c.test"));
	assert_non_null(strstr(fx->fake.ops.data, "chg Content-Type 1 multipart/signed; protocol=\"application/pkcs7-signature\""));
	assert_null(strstr(fx->fake.ops.data, "X-Cables"));
	/* The new body is the multipart/signed body (the entity as first part); its boundary is in the field. */
	b = strstr(fx->fake.ops.data, "boundary=\"");
	assert_non_null(b);
	e = strchr(b + 10, '"');
	entity = xasprintf("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; "
	    "boundary=\"%.*s\"\r\n\r\n%.*s", (int)(e - b - 10), b + 10, (int)fx->fake.body.len,
	    fx->fake.body.data);
	assert_signed_entity(entity, strlen(entity), alice_cert);
	free(entity);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_no_signature_without_a_trusted_client_or_a_key(void **state)
{
	struct milter_fixture *fx = fixture_new("Sign yes");
	struct message *m;
	struct outcome out;

	store(fx, "bob@b.test", bob_cert);
	milter_fixture_store(fx, "alice@a.test", alice_cert, alice_key);
	/* The sender domain alone (anyone can claim it) is not enough. */
	m = new_message(fx, "alice@a.test", true, "bob@b.test");
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_null(strstr(out.detail, "signed"));
	message_free(m);
	/* A trusted sender without a key: encrypted, unsigned, and the log says why. */
	m = new_message(fx, "dan@a.test", true, "bob@b.test");
	m->client_trusted = true;
	m->auth_login = xstrdup("dan@a.test");
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_non_null(strstr(out.detail, "unsigned: no signing key for dan@a.test: no certificate"));
	message_free(m);
	milter_fixture_free(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encrypts_when_every_remote_recipient_has_a_key),
		cmocka_unit_test(test_header_protection_and_padding),
		cmocka_unit_test(test_recipients_are_classified_or_refused),
		cmocka_unit_test(test_forged_verdicts_are_removed_in_every_direction),
		cmocka_unit_test(test_rewrite_replaces_duplicates_and_drops_other_content_fields),
		cmocka_unit_test(test_leading_space_values_are_kept_exactly),
		cmocka_unit_test(test_passes_what_it_should_not_touch),
		cmocka_unit_test(test_missing_key_under_encrypt_sends_plaintext_and_says_why),
		cmocka_unit_test(test_keyd_error_at_a_remembered_domain_is_as_under_require),
		cmocka_unit_test(test_missing_key_under_require_is_refused),
		cmocka_unit_test(test_mixed_recipients_under_require_are_refused),
		cmocka_unit_test(test_already_encrypted_content_passes_under_require),
		cmocka_unit_test(test_armored_plaintext_is_not_already_encrypted),
		cmocka_unit_test(test_mislabelled_smime_is_encrypted_under_require),
		cmocka_unit_test(test_oversized_body),
		cmocka_unit_test(test_internal_errors_follow_on_internal_error_but_never_leak),
		cmocka_unit_test(test_header_change_failure_temp_fails),
		cmocka_unit_test(test_key_store_failure_is_an_internal_error),
		cmocka_unit_test(test_encrypt_to_self_adds_the_senders_certificate),
		cmocka_unit_test(test_reply_text_is_safe_for_libmilter),
		cmocka_unit_test(test_trusted_sender_signs_then_encrypts),
		cmocka_unit_test(test_unencrypted_mail_is_clear_signed),
		cmocka_unit_test(test_no_signature_without_a_trusted_client_or_a_key),
	};

	return cmocka_run_group_tests_name("outbound", tests, group_setup, group_teardown);
}
