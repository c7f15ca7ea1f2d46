/*
 * test_split - split delivery, driven without an MTA: the marker a copy
 * comes back with, outbound recipient groups re-injected to a scripted
 * SMTP server (fake_smtp.h) standing in for ReinjectTo, and inbound copies
 * for the recipients the sender did not encrypt to.  The order that keeps
 * mail from being lost is checked throughout: the transaction is changed
 * in place first, then every copy is queued, and only then are the copies'
 * recipients removed (the "del" lines of the recording MTA).
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/cms.h>

#include "copies.h"
#include "dispatch.h"
#include "fake_smtp.h"
#include "helpers.h"
#include "inbound.h"
#include "message.h"
#include "mime.h"
#include "outbound.h"
#include "reinject.h"
#include "smime.h"

#define NOW ((time_t)1790000000)

static const uint8_t reinject_key[REINJECT_KEY_LEN] = {
	0x3d, 0x90, 0x21, 0xb4, 0x5e, 0x07, 0xc8, 0x6a, 0x11, 0xf2, 0x4c, 0x83, 0x29, 0xde, 0x70, 0x05,
	0x9b, 0x46, 0xe1, 0x38, 0xa7, 0x5f, 0x0c, 0xd3, 0x62, 0x1a, 0x8e, 0x47, 0xb0, 0xf9, 0x24, 0x6d,
};

/* Outbound: alice sends, bob, dave and erin are remote with keys; inbound: ann and cal are local with keys. */
static X509 *alice_cert, *bob_cert, *dave_cert, *erin_cert, *ann_cert, *cal_cert;
static EVP_PKEY *alice_key, *bob_key, *dave_key, *erin_key, *ann_key, *cal_key;

static int
group_setup(void **state)
{
	mime_init();
	if (smime_generate("alice@a.test", SMIME_ALGO_P256, 365, NOW, &alice_cert, &alice_key, NULL) != CABLES_OK ||
	    smime_generate("bob@b.test", SMIME_ALGO_P256, 365, NOW, &bob_cert, &bob_key, NULL) != CABLES_OK ||
	    smime_generate("dave@d.test", SMIME_ALGO_P256, 365, NOW, &dave_cert, &dave_key, NULL) != CABLES_OK ||
	    smime_generate("erin@e.test", SMIME_ALGO_P256, 365, NOW, &erin_cert, &erin_key, NULL) != CABLES_OK ||
	    smime_generate("ann@a.test", SMIME_ALGO_P256, 365, NOW, &ann_cert, &ann_key, NULL) != CABLES_OK ||
	    smime_generate("cal@a.test", SMIME_ALGO_P256, 365, NOW, &cal_cert, &cal_key, NULL) != CABLES_OK)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	X509 *certs[] = { alice_cert, bob_cert, dave_cert, erin_cert, ann_cert, cal_cert };
	EVP_PKEY *keys[] = { alice_key, bob_key, dave_key, erin_key, ann_key, cal_key };

	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
	return 0;
}

/* A fixture whose ReinjectTo is server (NULL: none), with split delivery possible when split is set. */
static struct milter_fixture *
fixture_new(const struct fake_smtp *server, bool split, const char *extra)
{
	char *config = xasprintf("%s%s\n%s", server != NULL ? "ReinjectTo " : "", server != NULL ? server->target : "",
	    extra);
	struct milter_fixture *fx = milter_fixture_new(config, NOW);

	free(config);
	fx->env.marker_key = reinject_key;
	if (split)
		fx->env.reinject_key = reinject_key;
	return fx;
}

/* ---- messages ---- */

static const char plain_body[] = "Hello.\r\n.A line with a dot\r\nPLAINTEXT-MARKER\r\n";
static const char plain_entity[] =
    "MIME-Version: 1.0\r\nContent-Type: text/plain;\r\n\tcharset=utf-8\r\n\r\n"
    "Hello.\r\n.A line with a dot\r\nPLAINTEXT-MARKER\r\n";

/* Add the comma-separated recipients, each "<addr>" with NOTIFY and ORCPT when params is set. */
static void
add_rcpts(struct message *m, const struct config *cfg, const char *rcpts, bool params)
{
	char *copy = xstrdup(rcpts), *save = NULL;

	for (char *r = strtok_r(copy, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save)) {
		char *arg = xasprintf("<%s>", r), *orcpt = xasprintf("ORCPT=rfc822;%s", r);
		char *args[] = { "NOTIFY=FAILURE", orcpt, NULL };

		assert_true(message_add_rcpt(m, cfg, arg, params ? args : NULL));
		free(arg);
		free(orcpt);
	}
	free(copy);
}

/* An outbound message from alice@a.test; to names the visible recipients (the others are Bcc). */
static struct message *
outbound_message(struct milter_fixture *fx, const char *rcpts, const char *to)
{
	struct message *m = message_new(fx->cfg, "alice@a.test", true, false);
	char *mail_args[] = { "RET=HDRS", "ENVID=QQ314159", "SIZE=100", NULL };

	message_set_queue_id(m, "QID1");
	message_set_mail_esmtp(m, mail_args);
	add_rcpts(m, fx->cfg, rcpts, true);
	message_add_header(m, "From", "alice@a.test");
	message_add_header(m, "To", to);
	message_add_header(m, "X-Cables", "forged by the sender");
	message_add_header(m, "Authentication-Results", "mx.b.test; dkim=pass header.d=a.test");
	message_add_header(m, "Authentication-Results", "mx.a.test; smime=pass (forged by the sender)");
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "text/plain;\n\tcharset=utf-8");
	message_add_header(m, "Subject", "hello");
	message_add_body(m, plain_body, strlen(plain_body));
	return m;
}

static cables_status
spool_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

static const char inner[] = "Content-Type: text/plain; charset=utf-8\r\n\r\nFor your eyes only.\r\n";

/* An inbound S/MIME message from alice@b.test to local recipients, encrypted to ann only. */
static struct message *
inbound_message(struct milter_fixture *fx, const char *rcpts)
{
	struct message *m = message_new(fx->cfg, "alice@b.test", false, false);
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_encrypt_opts o = { CIPHER_AES256_CBC, RSA_PAD_PKCS1 };
	struct byte_sink sink = { spool_write, m->body };
	struct entity_src src;

	message_set_queue_id(m, "QID2");
	add_rcpts(m, fx->cfg, rcpts, false);
	message_add_header(m, "From", "Alice <alice@b.test>");
	message_add_header(m, "To", "ann@a.test, cal@a.test");
	message_add_header(m, "X-Cables", "decrypted; format=smime; signature=valid; signer=ceo@a.test");
	message_add_header(m, "Subject", "...");
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m");
	message_add_header(m, "Content-Transfer-Encoding", "base64");
	entity_src_init(&src);
	entity_src_mem(&src, inner, strlen(inner));
	sk_X509_push(certs, ann_cert);
	assert_int_equal(smime_encrypt(&o, certs, &src, &sink, NULL), CABLES_OK);
	sk_X509_free(certs);
	return m;
}

/* The milter's path: the plan at end of header (kept when a marker makes it wait), then end of message. */
static void
run(struct milter_fixture *fx, struct message *m, const struct mta *mta, struct outcome *out)
{
	dispatch_eoh(m, &fx->env, out);
	if (out->verdict == VERDICT_CONTINUE)
		dispatch_eom(m, &fx->env, mta != NULL ? mta : &fx->fake.mta, out);
}

/* ---- copies as the server got them ---- */

struct copy {
	char *text;		/* the message, dot-stuffing undone */
	size_t len;
	const char *body;	/* after the empty line */
	size_t body_len;
	char marker[256];	/* the marker field, taken out of text: the last of the header */
};

static void
copy_of(const struct fake_smtp *s, size_t i, struct copy *c)
{
	char *sep;

	assert_true(i < s->nsessions);
	c->text = fake_smtp_message(&s->session[i], &c->len);
	sep = strstr(c->text, "\r\n\r\n");
	assert_non_null(sep);
	{
		char *f = sep;	/* the start of the last field: the marker */
		size_t n;

		while (f > c->text && !(f[-1] == '\n'))
			f--;
		assert_true(strncmp(f, REINJECT_MARKER ": ", strlen(REINJECT_MARKER) + 2) == 0);
		n = (size_t)(sep + 2 - f);
		assert_true(n < sizeof(c->marker));
		memcpy(c->marker, f, n - 2);
		c->marker[n - 2] = '\0';
		memmove(f, sep + 2, c->len - (size_t)(sep + 2 - c->text) + 1);
		c->len -= n;
		sep = f - 2;
	}
	c->body = sep + 4;
	c->body_len = c->len - (size_t)(c->body - c->text);
}

static void
copy_release(struct copy *c)
{
	free(c->text);
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	return strlen(s) >= strlen(suffix) && strcmp(s + strlen(s) - strlen(suffix), suffix) == 0;
}

/* Does the copy's header section hold this line (a whole field, "Name: value")? */
static bool
has_field(const struct copy *c, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = c->text; p < c->body; p = strstr(p, "\r\n") + 2)
		if (strncmp(p, line, n) == 0 && strncmp(p + n, "\r\n", 2) == 0)
			return true;
	return false;
}

static int
recipient_infos(const struct copy *c)
{
	size_t der_len;
	uint8_t *der = test_b64_decode(c->body, c->body_len, &der_len);
	BIO *in;
	CMS_ContentInfo *cms;
	int n = -1;

	assert_non_null(der);
	in = BIO_new_mem_buf(der, (int)der_len);
	cms = d2i_CMS_bio(in, NULL);
	if (cms != NULL)
		n = sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms));
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	free(der);
	return n;
}

static void
assert_decrypts(const char *b64, size_t len, X509 *cert, EVP_PKEY *key, const char *expect)
{
	size_t der_len, plain_len;
	uint8_t *der = test_b64_decode(b64, len, &der_len), *plain;

	assert_non_null(der);
	plain = test_cms_decrypt(der, der_len, cert, key, &plain_len);
	assert_non_null(plain);
	assert_int_equal(plain_len, strlen(expect));
	assert_memory_equal(plain, expect, plain_len);
	free(plain);
	free(der);
}

/* The value of the copy's first field called name, folding kept, or NULL. */
static char *
field_value(const struct copy *c, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = c->text; p < c->body; p = strstr(p, "\r\n") + 2) {
		const char *end = p;

		if (strncmp(p, name, n) != 0 || strncmp(p + n, ": ", 2) != 0)
			continue;
		do
			end = strstr(end, "\r\n") + 2;
		while (*end == ' ' || *end == '\t');
		return xstrndup(p + n + 2, (size_t)(end - 2 - p - n - 2));
	}
	return NULL;
}

/* entity (header and body) is multipart/signed around plain_entity, and alice's signature verifies. */
static void
assert_signed_by_alice(const char *entity, size_t len)
{
	const char *q = strstr(entity, "boundary=\""), *body = strstr(entity, "\r\n\r\n");
	char *boundary, *dir = test_tempdir();
	struct spool *sp = spool_new(dir, SPOOL_MEMORY_LIMIT, 0);
	struct smime_verify_ctx ctx = { NULL, NULL, NULL, NOW, dir };
	struct smime_sig sig;
	struct cables_err err;

	assert_true(starts_with(entity, "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\""));
	assert_non_null(q);
	assert_non_null(body);
	boundary = xstrndup(q + 10, strcspn(q + 10, "\""));
	assert_non_null(memmem(entity, len, plain_entity, strlen(plain_entity)));
	assert_int_equal(spool_append(sp, entity, len, NULL), CABLES_OK);
	if (smime_verify_multipart(&ctx, boundary, sp, body + 4 - entity, -1, &sig, &err) != CABLES_OK)
		fail_msg("signature: %s", err.msg);
	assert_int_equal(X509_cmp(sig.cert, alice_cert), 0);
	smime_sig_release(&sig);
	spool_free(sp);
	free(boundary);
	test_rmdir(dir);
	free(dir);
}

static uint8_t *
decrypt_to(const char *b64, size_t len, X509 *cert, EVP_PKEY *key, size_t *plain_len)
{
	size_t der_len;
	uint8_t *der = test_b64_decode(b64, len, &der_len), *plain;

	assert_non_null(der);
	plain = test_cms_decrypt(der, der_len, cert, key, plain_len);
	assert_non_null(plain);
	plain[*plain_len] = '\0';	/* test_cms_decrypt() leaves room for it */
	free(der);
	return plain;
}

/*
 * The copy a session carried, coming back through the milter as the MTA
 * would present it: the envelope from the session's commands, the fields
 * and the body from its DATA.
 */
static struct message *
message_of_copy(struct milter_fixture *fx, const struct fake_smtp *s, size_t i, bool sender_local)
{
	const char *cmds = s->session[i].commands.data;
	const char *from = strstr(cmds, "MAIL FROM:<") + 11;
	char *sender = xstrndup(from, strcspn(from, ">"));
	struct message *m = message_new(fx->cfg, sender, sender_local, false);
	struct copy c;

	free(sender);
	for (const char *r = strstr(cmds, "RCPT TO:"); r != NULL; r = strstr(r + 1, "RCPT TO:")) {
		char *arg = xstrndup(r + 8, strcspn(r + 8, " \r"));

		assert_true(message_add_rcpt(m, fx->cfg, arg, NULL));
		free(arg);
	}
	copy_of(s, i, &c);
	for (const char *p = c.text; p < c.body - 2;) {
		const char *colon = strchr(p, ':'), *end = p;
		char *name, *value;

		/* A field runs to the line break not followed by a blank. */
		do
			end = strstr(end, "\r\n") + 2;
		while (*end == ' ' || *end == '\t');
		name = xstrndup(p, (size_t)(colon - p));
		value = xstrndup(colon + 2, (size_t)(end - 2 - colon - 2));
		message_add_header(m, name, value);
		free(name);
		free(value);
		p = end;
	}
	/* The marker, as the last field. */
	message_add_header(m, REINJECT_MARKER, c.marker + strlen(REINJECT_MARKER) + 2);
	message_add_body(m, c.body, c.body_len);
	copy_release(&c);
	return m;
}

/* Every copy the server queued passes untouched when it comes back. */
static void
assert_copies_come_back_as_ours(struct milter_fixture *fx, const struct fake_smtp *s, bool sender_local)
{
	for (size_t i = 0; i < s->nsessions; i++) {
		struct message *m = message_of_copy(fx, s, i, sender_local);
		struct fake_mta fake;
		struct outcome out;

		fake_mta_init(&fake, false);
		assert_int_equal(m->outer[OUTER_MARKER], 1);
		run(fx, m, &fake.mta, &out);
		if (out.verdict != VERDICT_ACCEPT || strcmp(out.detail, "a copy re-injected by Cables") != 0)
			fail_msg("copy %zu: verdict %d: %s", i, out.verdict, out.detail);
		assert_int_equal(fake.ops.len, 0);
		assert_int_equal(fake.body.len, 0);
		fake_mta_release(&fake);
		message_free(m);
	}
}

/* The ops the recording MTA saw, from the first "del" line on ("" when none). */
static const char *
dels_of(const struct milter_fixture *fx)
{
	const char *d = fx->fake.ops.data != NULL ? strstr(fx->fake.ops.data, "del ") : NULL;

	return d != NULL ? d : "";
}

/* ---- the marker a message arrives with ---- */

/* A marker for m's sender, recipients, header fields and body, made at when. */
static char *
marker_for(const struct message *m, time_t when)
{
	const char *rcpts[8];
	struct reinject_received r = { m->sender, rcpts, m->nrcpts, m->headers, m->body };
	char marker[200];

	for (size_t i = 0; i < m->nrcpts; i++)
		rcpts[i] = m->rcpts[i].addr;
	assert_int_equal(reinject_marker_for(reinject_key, when, &r, marker, sizeof(marker), NULL), CABLES_OK);
	return xstrdup(marker);
}

/* An outbound message with a marker field (or two) inserted among its fields. */
static struct message *
marked_message(struct milter_fixture *fx, const char *rcpts, const char *sender, bool local, const char *marker,
    const char *second)
{
	struct message *m = message_new(fx->cfg, sender, local, false);

	add_rcpts(m, fx->cfg, rcpts, false);
	message_add_header(m, "From", sender);
	message_add_header(m, "To", rcpts);
	message_add_header(m, REINJECT_MARKER, marker);
	message_add_header(m, "Content-Type", "text/plain");
	if (second != NULL)
		message_add_header(m, "x-cables-reinjected", second);
	message_add_body(m, plain_body, strlen(plain_body));
	return m;
}

static const char encrypt_ops[] =
    "chg Content-Type 1 application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
    "add Content-Transfer-Encoding base64\n"
    "add Content-Disposition attachment; filename=smime.p7m\n"
    "add Content-Description S/MIME Encrypted Message\n"
    "add MIME-Version 1.0\n";

static void
test_a_copy_with_a_valid_marker_passes_unchanged(void **state)
{
	struct milter_fixture *fx = fixture_new(NULL, false, "");
	struct message *m, *probe;
	struct outcome out;
	char *marker;

	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	/* The marker is made for the recipients and body the message arrives with. */
	probe = marked_message(fx, "bob@b.test", "alice@a.test", true, "x", NULL);
	marker = marker_for(probe, NOW - 60);
	message_free(probe);
	m = marked_message(fx, "bob@b.test", "alice@a.test", true, marker, NULL);
	run(fx, m, NULL, &out);
	assert_int_equal(out.verdict, VERDICT_ACCEPT);
	assert_string_equal(out.what, "pass");
	assert_string_equal(out.detail, "a copy re-injected by Cables");
	assert_int_equal(fx->fake.ops.len, 0);
	assert_int_equal(fx->fake.body.len, 0);
	message_free(m);
	free(marker);
	milter_fixture_free(fx);
}

static void
test_a_marker_that_does_not_verify_is_removed_and_the_message_handled(void **state)
{
	const struct {
		const char *what;
		bool second, keyless, for_other, stale, too_big;
		const char *dels, *why;
	} cases[] = {
		{ "for other recipients", false, false, true, false, false, "chg X-Cables-Reinjected 1 (delete)\n",
		    "it does not verify" },
		{ "stale", false, false, false, true, false, "chg X-Cables-Reinjected 1 (delete)\n",
		    "it does not verify" },
		{ "two markers", true, false, false, false, false,
		    "chg X-Cables-Reinjected 2 (delete)\nchg X-Cables-Reinjected 1 (delete)\n",
		    "more than one marker" },
		{ "no key", false, true, false, false, false, "chg X-Cables-Reinjected 1 (delete)\n",
		    "no ReinjectKey to check it" },
		{ "body not spooled", false, false, false, false, true, "chg X-Cables-Reinjected 1 (delete)\n",
		    "body not available" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct milter_fixture *fx = fixture_new(NULL, false, "");
		struct message *m, *probe;
		struct outcome out;
		char *marker, *expect, *note;

		milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
		probe = marked_message(fx, cases[i].for_other ? "bob@b.test,eve@evil.test" : "bob@b.test",
		    "alice@a.test", true, "x", NULL);
		marker = marker_for(probe, cases[i].stale ? NOW - REINJECT_WINDOW - 1 : NOW);
		message_free(probe);
		/* Even two valid markers are refused. */
		m = marked_message(fx, "bob@b.test", "alice@a.test", true, marker, cases[i].second ? marker : NULL);
		if (cases[i].keyless)
			fx->env.marker_key = NULL;
		if (cases[i].too_big) {
			m->body_status = CABLES_ERR_IO;
			strcpy(m->body_err.msg, "spool write: No space left on device");
		}
		run(fx, m, NULL, &out);
		note = xasprintf("; X-Cables-Reinjected field removed: %s", cases[i].why);
		if (!ends_with(out.detail, note))
			fail_msg("case '%s': detail '%s'", cases[i].what, out.detail);
		if (cases[i].too_big) {
			/* Then handled like any message whose body is missing: an internal error. */
			assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
			assert_string_equal(fx->fake.ops.data, cases[i].dels);
		} else {
			/* Removed first (the last one first), then encrypted as usual. */
			assert_int_equal(out.verdict, VERDICT_MODIFIED);
			assert_string_equal(out.what, "encrypted");
			expect = xasprintf("%s%s", cases[i].dels, encrypt_ops);
			if (strcmp(fx->fake.ops.data, expect) != 0)
				fail_msg("case '%s': ops\n%s", cases[i].what, fx->fake.ops.data);
			free(expect);
			assert_int_not_equal(fx->fake.body.len, 0);
		}
		free(note);
		free(marker);
		message_free(m);
		milter_fixture_free(fx);
	}
}

static void
test_an_early_decision_waits_for_the_marker_check(void **state)
{
	struct milter_fixture *fx = fixture_new(NULL, false, "");
	struct message *m, *probe;
	struct outcome out;
	char *marker;

	/* A remote sender is passed at end of header; with a marker, only at end of message. */
	probe = marked_message(fx, "bob@b.test", "mallory@evil.test", false, "x", NULL);
	marker = marker_for(probe, NOW);
	message_free(probe);
	m = marked_message(fx, "bob@b.test,eve@evil.test", "mallory@evil.test", false, marker, NULL);
	run(fx, m, NULL, &out);
	assert_true(m->have_early);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);	/* the removal must be kept */
	assert_string_equal(out.what, "pass");
	assert_string_equal(out.detail,
	    "sender mallory@evil.test is not local; X-Cables-Reinjected field removed: it does not verify");
	assert_string_equal(fx->fake.ops.data, "chg X-Cables-Reinjected 1 (delete)\n");
	message_free(m);
	/* The same early decision with a marker that verifies: the copy passes as it is. */
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	m = marked_message(fx, "bob@b.test", "mallory@evil.test", false, marker, NULL);
	run(fx, m, NULL, &out);
	assert_int_equal(out.verdict, VERDICT_ACCEPT);
	assert_string_equal(out.detail, "a copy re-injected by Cables");
	assert_int_equal(fx->fake.ops.len, 0);
	message_free(m);
	free(marker);
	milter_fixture_free(fx);
}

static void
test_a_refused_marker_removal_temp_fails(void **state)
{
	struct milter_fixture *fx = fixture_new(NULL, false, "On-InternalError accept");
	struct message *m = marked_message(fx, "bob@b.test", "mallory@evil.test", false, "v1 t=1 n=0 h=0", NULL);
	struct outcome out;

	fx->fake.fail_headers = true;
	run(fx, m, NULL, &out);
	/* accept would deliver a forged marker: the removal was a change already under way. */
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_non_null(strstr(out.detail, "the MTA refused a header change"));
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_copies_are_described_for_the_log(void **state)
{
	struct milter_fixture *fx = fixture_new(NULL, true, "");
	struct message *m = outbound_message(fx, "bob@b.test,carol@c.test,dave@d.test", "bob@b.test");
	const size_t first[] = { 1 }, others[] = { 0, 2 };
	struct buf b;

	buf_init(&b);
	copy_describe(m, "as it is", first, 1, "4ABC", &b);
	assert_string_equal(b.data, "as it is to carol@c.test as 4ABC");
	copy_describe(m, "encrypted", others, 2, "", &b);
	assert_string_equal(b.data,
	    "as it is to carol@c.test as 4ABC, encrypted to bob@b.test, dave@d.test as (unknown)");
	buf_reset(&b);
	copy_describe(m, "kept", others, 2, NULL, &b);
	assert_string_equal(b.data, "kept to bob@b.test, dave@d.test");
	buf_release(&b);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_no_copy_without_split_delivery(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, false, "");
	struct message *m = outbound_message(fx, "bob@b.test,carol@c.test", "bob@b.test, carol@c.test");
	const size_t members[] = { 1 };
	struct entity_src body;
	struct buf first;
	struct cables_err err;
	char qid[64] = "stale";

	buf_init(&first);
	entity_src_init(&body);
	entity_src_spool(&body, m->body, 0, -1);
	fake_smtp_serve(s);
	assert_int_equal(copy_send(m, &fx->env, members, 1, NULL, &first, NULL, &body, qid, sizeof(qid), &err),
	    CABLES_ERR_ARG);
	fake_smtp_stop(s);
	assert_string_equal(err.msg, "split delivery is not available");
	assert_string_equal(qid, "");
	assert_int_equal(s->nsessions, 0);
	buf_release(&first);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

/* ---- outbound ---- */

static void
test_keyless_local_and_never_recipients_get_one_plaintext_copy(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "Policy never.test never");
	struct message *m;
	struct outcome out;
	struct copy c;

	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	m = outbound_message(fx, "carol@c.test,bob@b.test,dan@a.test,nev@never.test",
	    "carol@c.test, bob@b.test, dan@a.test, nev@never.test");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	assert_int_equal(m->plan, PLAN_SPLIT);
	if (out.verdict != VERDICT_MODIFIED)
		fail_msg("verdict %d: %s", out.verdict, out.detail);
	assert_string_equal(out.what, "encrypted");
	assert_non_null(strstr(out.detail, "format=smime cipher=aes256-cbc recipients=1 "));
	assert_non_null(strstr(out.detail, "; split: kept encrypted to bob@b.test; copies as it is to carol@c.test, "
	    "dan@a.test, nev@never.test as FAKE1"));
	/*
	 * The transaction: the forged X-Cables and our forged Authentication-Results gone first, encrypted
	 * for bob (only) in place with no trace field, then the others removed.
	 */
	assert_decrypts(fx->fake.body.data, fx->fake.body.len, bob_cert, bob_key, plain_entity);
	assert_null(strstr(fx->fake.body.data, "PLAINTEXT-MARKER"));
	assert_string_equal(fx->fake.ops.data,
	    "chg X-Cables 1 (delete)\n"
	    "chg Authentication-Results 2 (delete)\n"
	    "chg Content-Type 1 application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
	    "add Content-Transfer-Encoding base64\n"
	    "add Content-Disposition attachment; filename=smime.p7m\n"
	    "add Content-Description S/MIME Encrypted Message\n"
	    "del <carol@c.test>\ndel <dan@a.test>\ndel <nev@never.test>\n");
	/* One copy for the three, with the envelope's parameters, the marker first and the original content. */
	assert_int_equal(s->nsessions, 1);
	assert_string_equal(s->session[0].commands.data,
	    "EHLO cables-reinject\r\n"
	    "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ314159\r\n"
	    "RCPT TO:<carol@c.test> NOTIFY=FAILURE ORCPT=rfc822;carol@c.test\r\n"
	    "RCPT TO:<dan@a.test> NOTIFY=FAILURE ORCPT=rfc822;dan@a.test\r\n"
	    "RCPT TO:<nev@never.test> NOTIFY=FAILURE ORCPT=rfc822;nev@never.test\r\n"
	    "DATA\r\nQUIT\r\n");
	copy_of(s, 0, &c);
	assert_true(starts_with(c.marker, "X-Cables-Reinjected: v2 t=1790000000 n="));
	assert_string_equal(c.text,
	    "From: alice@a.test\r\n"
	    "To: carol@c.test, bob@b.test, dan@a.test, nev@never.test\r\n"
	    "Authentication-Results: mx.b.test; dkim=pass header.d=a.test\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain;\r\n\tcharset=utf-8\r\n"
	    "Subject: hello\r\n"
	    "\r\n"
	    "Hello.\r\n.A line with a dot\r\nPLAINTEXT-MARKER\r\n");
	copy_release(&c);
	assert_copies_come_back_as_ours(fx, s, true);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

static void
test_each_bcc_recipient_gets_an_encrypted_copy_of_its_own(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "");
	struct message *m;
	struct outcome out;
	const struct { const char *rcpt; X509 *cert; EVP_PKEY *key; } bcc[] = {
		{ "dave@d.test", dave_cert, dave_key }, { "erin@e.test", erin_cert, erin_key },
	};

	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	milter_fixture_store(fx, "dave@d.test", dave_cert, NULL);
	milter_fixture_store(fx, "erin@e.test", erin_cert, NULL);
	m = outbound_message(fx, "dave@d.test,bob@b.test,erin@e.test", "Bob <bob@b.test>");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	if (out.verdict != VERDICT_MODIFIED)
		fail_msg("verdict %d: %s", out.verdict, out.detail);
	assert_non_null(strstr(out.detail, "; split: kept encrypted to bob@b.test; copies encrypted (bcc) to "
	    "dave@d.test as FAKE1 (format=smime; cipher=aes256-cbc; recipients=1; bcc), encrypted (bcc) to "
	    "erin@e.test as FAKE2 (format=smime; cipher=aes256-cbc; recipients=1; bcc)"));
	/* In place: one RecipientInfo, bob's. */
	{
		struct copy in_place = { fx->fake.body.data, fx->fake.body.len, fx->fake.body.data, fx->fake.body.len, "" };

		assert_int_equal(recipient_infos(&in_place), 1);
		assert_decrypts(fx->fake.body.data, fx->fake.body.len, bob_cert, bob_key, plain_entity);
	}
	assert_string_equal(dels_of(fx), "del <dave@d.test>\ndel <erin@e.test>\n");
	assert_int_equal(s->nsessions, 2);
	for (size_t i = 0; i < 2; i++) {
		struct copy c;
		char *rcpt = xasprintf("\r\nRCPT TO:<%s> NOTIFY=FAILURE ORCPT=rfc822;%s\r\nDATA\r\n", bcc[i].rcpt,
		    bcc[i].rcpt);

		assert_non_null(strstr(s->session[i].commands.data, rcpt));
		free(rcpt);
		copy_of(s, i, &c);
		/* Encrypted to this one recipient only: the RecipientInfos name nobody else. */
		assert_int_equal(recipient_infos(&c), 1);
		assert_decrypts(c.body, c.body_len, bcc[i].cert, bcc[i].key, plain_entity);
		assert_null(strstr(c.text, "PLAINTEXT-MARKER"));
		/* No trace field on the wire copy: the marker is last in the header. */
		assert_null(strstr(c.text, "X-Cables:"));
		assert_true(starts_with(c.marker, "X-Cables-Reinjected: v2 t=1790000000 n="));
		/* The copy's own content fields replace the original ones; the forged X-Cables is gone. */
		assert_true(has_field(&c,
		    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m"));
		assert_true(has_field(&c, "Content-Transfer-Encoding: base64"));
		assert_true(has_field(&c, "MIME-Version: 1.0"));
		assert_true(has_field(&c, "To: Bob <bob@b.test>"));
		assert_null(strstr(c.text, "text/plain"));
		assert_null(strstr(c.text, "forged"));
		assert_null(strstr(c.text, "charset"));
		copy_release(&c);
	}
	assert_copies_come_back_as_ours(fx, s, true);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

static void
test_without_a_visible_group_the_plaintext_one_stays(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "");
	struct message *m;
	struct outcome out;
	struct copy c;

	/* A Bcc recipient with a key first, a keyless one named in To. */
	milter_fixture_store(fx, "dave@d.test", dave_cert, NULL);
	m = outbound_message(fx, "dave@d.test,carol@c.test", "carol@c.test");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "plaintext");
	assert_non_null(strstr(out.detail, "; split: kept as it is to carol@c.test; copies encrypted (bcc) to "
	    "dave@d.test as FAKE1"));
	assert_int_equal(fx->fake.body.len, 0);
	assert_string_equal(fx->fake.ops.data, "chg X-Cables 1 (delete)\nchg Authentication-Results 2 (delete)\n"
	    "del <dave@d.test>\n");
	assert_int_equal(s->nsessions, 1);
	copy_of(s, 0, &c);
	assert_int_equal(recipient_infos(&c), 1);
	assert_decrypts(c.body, c.body_len, dave_cert, dave_key, plain_entity);
	copy_release(&c);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

static void
test_a_signing_sender_signs_every_copy(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "Policy a.test Sign=yes");
	struct message *m;
	struct outcome out;
	struct copy c;
	uint8_t *plain;
	size_t plain_len;
	char *ct, *entity;

	milter_fixture_store(fx, "alice@a.test", alice_cert, alice_key);
	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	milter_fixture_store(fx, "dave@d.test", dave_cert, NULL);
	m = outbound_message(fx, "bob@b.test,carol@c.test,dave@d.test", "bob@b.test, carol@c.test");
	m->client_trusted = true;
	m->auth_login = xstrdup("alice@a.test");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	if (out.verdict != VERDICT_MODIFIED)
		fail_msg("verdict %d: %s", out.verdict, out.detail);
	assert_non_null(strstr(out.detail, "recipients=1 signed"));
	assert_non_null(strstr(out.detail, "; split: kept encrypted to bob@b.test; copies as it is to carol@c.test as "
	    "FAKE1 (signed; format=smime), encrypted (bcc) to dave@d.test as FAKE2 (format=smime; cipher=aes256-cbc; "
	    "recipients=1; signed; bcc)"));
	/* In place: signed, then encrypted for bob. */
	plain = decrypt_to(fx->fake.body.data, fx->fake.body.len, bob_cert, bob_key, &plain_len);
	assert_signed_by_alice((char *)plain, plain_len);
	free(plain);
	assert_string_equal(dels_of(fx), "del <carol@c.test>\ndel <dave@d.test>\n");
	assert_int_equal(s->nsessions, 2);
	/* carol's copy is clear-signed: the multipart/signed fields replace the original content fields. */
	copy_of(s, 0, &c);
	assert_null(strstr(c.text, "X-Cables:"));
	assert_true(starts_with(c.marker, "X-Cables-Reinjected: v2 "));
	assert_true(has_field(&c, "MIME-Version: 1.0"));
	assert_null(memmem(c.text, (size_t)(c.body - c.text), "text/plain", 10));
	ct = field_value(&c, "Content-Type");
	assert_non_null(ct);
	entity = xasprintf("Content-Type: %s\r\n\r\n%s", ct, c.body);
	assert_signed_by_alice(entity, strlen(entity));
	free(entity);
	free(ct);
	copy_release(&c);
	/* dave's copy is signed, then encrypted for dave alone. */
	copy_of(s, 1, &c);
	assert_null(strstr(c.text, "X-Cables:"));
	assert_true(starts_with(c.marker, "X-Cables-Reinjected: v2 "));
	assert_int_equal(recipient_infos(&c), 1);
	plain = decrypt_to(c.body, c.body_len, dave_cert, dave_key, &plain_len);
	assert_signed_by_alice((char *)plain, plain_len);
	free(plain);
	copy_release(&c);
	assert_copies_come_back_as_ours(fx, s, true);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

/* A recording MTA that refuses to remove recipients. */
static int
refuse_delrcpt(void *ctx, const char *rcpt)
{
	return -1;
}

static void
test_a_copy_not_queued_temp_fails_and_removes_nobody(void **state)
{
	const struct {
		const char *what;
		enum smtp_step step;
		const char *reply;
		size_t from;
		bool down;
		const char *detail;
	} cases[] = {
		{ "RCPT refused", SMTP_RCPT, "550 5.1.1 unknown\r\n", 0, false,
		    "split delivery: re-injection: RCPT TO refused: 550 5.1.1 unknown" },
		{ "copy refused", SMTP_DOT, "452 4.3.1 insufficient system storage\r\n", 0, false,
		    "split delivery: re-injection: the copy was refused: 452 4.3.1 insufficient system storage" },
		{ "second copy refused", SMTP_MAIL, "421 4.3.2 shutting down\r\n", 2, false,
		    "split delivery: re-injection: MAIL FROM refused: 421 4.3.2 shutting down (already queued: "
		    "as it is to carol@c.test as FAKE1)" },
		{ "closed mid-way", SMTP_DATA, FAKE_SMTP_CLOSE, 0, false,
		    "split delivery: re-injection: the server closed the connection" },
		{ "endpoint down", SMTP_GREETING, NULL, 0, true, "split delivery: re-injection to inet:" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct milter_fixture *fx;
		struct message *m;
		struct outcome out;

		if (cases[i].down) {
			snprintf(s->target, sizeof(s->target), "inet:%d@127.0.0.1", fake_smtp_closed_port());
		} else {
			s->reply[cases[i].step] = cases[i].reply;
			s->scripted_from = cases[i].from;
		}
		fx = fixture_new(s, true, "On-InternalError accept");
		milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
		milter_fixture_store(fx, "dave@d.test", dave_cert, NULL);
		m = outbound_message(fx, "bob@b.test,carol@c.test,dave@d.test", "bob@b.test, carol@c.test");
		fake_smtp_serve(s);
		run(fx, m, NULL, &out);
		fake_smtp_stop(s);
		if (out.verdict != VERDICT_TEMPFAIL || strstr(out.detail, cases[i].detail) == NULL)
			fail_msg("case '%s': verdict %d: %s", cases[i].what, out.verdict, out.detail);
		assert_string_equal(out.rcode, "451");
		assert_string_equal(out.xcode, "4.3.0");
		assert_string_equal(out.reply, "Cables: cannot queue a copy for some recipients, try again later");
		/* Nobody leaves the transaction, which the MTA keeps and retries as a whole. */
		assert_string_equal(dels_of(fx), "");
		message_free(m);
		milter_fixture_free(fx);
		fake_smtp_free(s);
	}
}

static void
test_a_recipient_the_mta_will_not_remove_temp_fails(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "");
	struct message *m;
	struct mta mta = fx->fake.mta;
	struct outcome out;

	mta.delrcpt = refuse_delrcpt;
	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	m = outbound_message(fx, "bob@b.test,carol@c.test", "bob@b.test, carol@c.test");
	fake_smtp_serve(s);
	run(fx, m, &mta, &out);
	fake_smtp_stop(s);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_string_equal(out.rcode, "451");
	assert_string_equal(out.xcode, "4.3.0");
	assert_string_equal(out.detail, "split delivery: the MTA refused to remove a recipient (copies were queued: "
	    "as it is to carol@c.test as FAKE1)");
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

static void
test_without_split_delivery_the_old_rules_apply(void **state)
{
	const struct {
		const char *what, *config, *rcpts, *to;
		enum verdict verdict;
		const char *how, *detail;
		int recipient_infos;
	} cases[] = {
		/* Accepted as they are but for the forged X-Cables field removed: modified. */
		{ "keyless under encrypt", "", "bob@b.test,carol@c.test", "bob@b.test, carol@c.test", VERDICT_MODIFIED,
		    "plaintext", "no usable S/MIME certificate for carol@c.test: no certificate (policy encrypt)", 0 },
		{ "keyless under require", "DefaultPolicy require", "bob@b.test,carol@c.test",
		    "bob@b.test, carol@c.test",
		    VERDICT_TEMPFAIL, "tempfail", "no usable S/MIME certificate for carol@c.test", 0 },
		{ "local under require", "DefaultPolicy require", "bob@b.test,dan@a.test", "bob@b.test, dan@a.test",
		    VERDICT_TEMPFAIL, "tempfail",
		    "local and remote recipients in one message (no ReinjectTo for split delivery)", 0 },
		{ "local under encrypt", "", "bob@b.test,dan@a.test", "bob@b.test, dan@a.test", VERDICT_MODIFIED,
		    "plaintext", "local and remote recipients in one message", 0 },
		/* Issue 16: one copy would show bob dave's key; without split delivery, none leaves. */
		{ "Bcc would share the copy", "", "bob@b.test,dave@d.test", "bob@b.test", VERDICT_TEMPFAIL, "tempfail",
		    "Bcc recipient dave@d.test would be named in the copy the other recipients get (no ReinjectTo "
		    "for split delivery)", 0 },
		{ "a Bcc recipient alone", "", "dave@d.test", "list@lists.a.test", VERDICT_MODIFIED, "encrypted",
		    "recipients=1", 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		/* ReinjectTo is set, but the key or the MTA's consent is missing. */
		struct milter_fixture *fx = fixture_new(s, false, cases[i].config);
		struct message *m;
		struct outcome out;

		milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
		milter_fixture_store(fx, "dave@d.test", dave_cert, NULL);
		m = outbound_message(fx, cases[i].rcpts, cases[i].to);
		fake_smtp_serve(s);
		run(fx, m, NULL, &out);
		fake_smtp_stop(s);
		if (out.verdict != cases[i].verdict || strcmp(out.what, cases[i].how) != 0 ||
		    strstr(out.detail, cases[i].detail) == NULL)
			fail_msg("case '%s': verdict %d %s: %s", cases[i].what, out.verdict, out.what, out.detail);
		assert_int_not_equal(m->plan, PLAN_SPLIT);
		assert_int_equal(s->nsessions, 0);
		assert_string_equal(dels_of(fx), "");
		if (cases[i].recipient_infos > 0) {
			struct copy in_place = { fx->fake.body.data, fx->fake.body.len, fx->fake.body.data,
			    fx->fake.body.len, "" };

			assert_int_equal(recipient_infos(&in_place), cases[i].recipient_infos);
		}
		message_free(m);
		milter_fixture_free(fx);
		fake_smtp_free(s);
	}
}

static void
test_one_group_needs_no_split(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "");
	struct message *m;
	struct outcome out;

	milter_fixture_store(fx, "bob@b.test", bob_cert, NULL);
	milter_fixture_store(fx, "erin@e.test", erin_cert, NULL);
	m = outbound_message(fx, "bob@b.test,erin@e.test", "bob@b.test, erin@e.test");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	assert_int_equal(m->plan, PLAN_ENCRYPT);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_null(strstr(out.detail, "split"));
	assert_int_equal(s->nsessions, 0);
	assert_string_equal(dels_of(fx), "");
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

/* ---- inbound ---- */

static void
test_recipients_the_sender_did_not_encrypt_to_get_the_message_as_it_came(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, true, "");
	struct message *m;
	struct outcome out;
	struct copy c;
	char fpr[65], *expect, *encrypted;
	size_t enc_len, got;

	milter_fixture_store(fx, "ann@a.test", ann_cert, ann_key);
	milter_fixture_store(fx, "cal@a.test", cal_cert, cal_key);
	m = inbound_message(fx, "cal@a.test,ann@a.test,dan@a.test");
	enc_len = spool_size(m->body);
	encrypted = xmalloc(enc_len + 1);
	assert_int_equal(spool_pread(m->body, 0, encrypted, enc_len, &got, NULL), CABLES_OK);
	encrypted[enc_len] = '\0';
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	if (out.verdict != VERDICT_MODIFIED)
		fail_msg("verdict %d: %s", out.verdict, out.detail);
	assert_string_equal(out.what, "decrypted");
	assert_non_null(strstr(out.detail, "; split: copy not decrypted to cal@a.test, dan@a.test as FAKE1 "
	    "(cal@a.test is not a recipient of the encryption)"));
	/* ann's transaction is decrypted in place; only then are the others removed. */
	smime_cert_fingerprint(ann_cert, fpr);
	expect = xasprintf(
	    "chg X-Cables 1 (delete)\n"
	    "chg Content-Transfer-Encoding 1 (delete)\n"
	    "chg Content-Type 1 (delete)\n"
	    "add Content-Type text/plain; charset=utf-8\n"
	    "ins 0 X-Cables decrypted; format=smime; key=%.16s\n"
	    "del <cal@a.test>\ndel <dan@a.test>\n", fpr);
	assert_string_equal(fx->fake.ops.data, expect);
	free(expect);
	assert_string_equal(fx->fake.body.data, "For your eyes only.\r\n");
	/* The others' copy: the reason and the marker first, the original fields, the ciphertext untouched. */
	assert_int_equal(s->nsessions, 1);
	assert_string_equal(s->session[0].commands.data,
	    "EHLO cables-reinject\r\nMAIL FROM:<alice@b.test>\r\nRCPT TO:<cal@a.test>\r\nRCPT TO:<dan@a.test>\r\n"
	    "DATA\r\nQUIT\r\n");
	copy_of(s, 0, &c);
	assert_true(starts_with(c.text,
	    "X-Cables: not-decrypted; format=smime; reason=\"cal@a.test is not a recipient of the encryption\"\r\n"));
	assert_true(starts_with(c.marker, "X-Cables-Reinjected: v2 t=1790000000 n="));
	assert_non_null(strstr(c.text,
	    "\r\nFrom: Alice <alice@b.test>\r\n"
	    "To: ann@a.test, cal@a.test\r\n"
	    "Subject: ...\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"));
	assert_null(strstr(c.text, "signer=ceo"));
	assert_int_equal(c.body_len, enc_len);
	assert_memory_equal(c.body, encrypted, enc_len);
	copy_release(&c);
	assert_copies_come_back_as_ours(fx, s, false);
	free(encrypted);
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

static void
test_on_decrypt_error_keeps_the_message_whole(void **state)
{
	const struct {
		const char *what, *config, *rcpts;
		enum verdict verdict;
		const char *how, *rcode, *xcode, *ops;
	} cases[] = {
		{ "quarantine", "Policy cal@a.test On-DecryptError=quarantine", "ann@a.test,cal@a.test",
		    VERDICT_MODIFIED, "quarantine", NULL, NULL,
		    "chg X-Cables 1 (delete)\n"
		    "ins 0 X-Cables not-decrypted; format=smime; "
		    "reason=\"cal@a.test is not a recipient of the encryption\"\n"
		    "quarantine Cables: not-decrypted: cal@a.test is not a recipient of the encryption\n" },
		{ "tempfail", "Policy cal@a.test On-DecryptError=tempfail", "ann@a.test,cal@a.test", VERDICT_TEMPFAIL,
		    "tempfail", "451", "4.7.5", "chg X-Cables 1 (delete)\n" },
		{ "reject", "Policy cal@a.test On-DecryptError=reject", "ann@a.test,cal@a.test", VERDICT_REJECT,
		    "reject", "554", "5.7.5", "chg X-Cables 1 (delete)\n" },
		{ "quarantine and reject", "Policy cal@a.test On-DecryptError=quarantine\n"
		    "Policy dan@a.test On-DecryptError=reject", "ann@a.test,cal@a.test,dan@a.test", VERDICT_REJECT,
		    "reject", "554", "5.7.5", NULL },
		{ "reject and tempfail", "Policy cal@a.test On-DecryptError=reject\n"
		    "Policy dan@a.test On-DecryptError=tempfail", "ann@a.test,cal@a.test,dan@a.test", VERDICT_TEMPFAIL,
		    "tempfail", "451", "4.7.5", NULL },
		{ "quarantine and accept", "Policy dan@a.test On-DecryptError=quarantine",
		    "ann@a.test,cal@a.test,dan@a.test",
		    VERDICT_MODIFIED, "quarantine", NULL, NULL, NULL },
		{ "accept, quarantine by default",
		    "On-DecryptError quarantine\nPolicy cal@a.test On-DecryptError=accept",
		    "ann@a.test,cal@a.test,dan@a.test", VERDICT_MODIFIED, "quarantine", NULL, NULL, NULL },
		{ "nobody a target", "Policy cal@a.test On-DecryptError=quarantine\n"
		    "Policy dan@a.test On-DecryptError=reject", "cal@a.test,dan@a.test", VERDICT_REJECT, "reject",
		    "554", "5.7.5", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct milter_fixture *fx = fixture_new(s, true, cases[i].config);
		struct message *m;
		struct outcome out;

		milter_fixture_store(fx, "ann@a.test", ann_cert, ann_key);
		milter_fixture_store(fx, "cal@a.test", cal_cert, cal_key);
		m = inbound_message(fx, cases[i].rcpts);
		fake_smtp_serve(s);
		run(fx, m, NULL, &out);
		fake_smtp_stop(s);
		if (out.verdict != cases[i].verdict || strcmp(out.what, cases[i].how) != 0)
			fail_msg("case '%s': verdict %d %s: %s", cases[i].what, out.verdict, out.what, out.detail);
		if (cases[i].rcode != NULL) {
			assert_string_equal(out.rcode, cases[i].rcode);
			assert_string_equal(out.xcode, cases[i].xcode);
		}
		if (cases[i].ops != NULL)
			assert_string_equal(fx->fake.ops.data, cases[i].ops);
		if (cases[i].verdict == VERDICT_MODIFIED)
			assert_non_null(strstr(fx->fake.ops.data, "\nquarantine Cables: not-decrypted: "));
		/* Not decrypted for anyone, no copy, nobody removed. */
		assert_int_equal(fx->fake.body.len, 0);
		assert_int_equal(s->nsessions, 0);
		assert_string_equal(dels_of(fx), "");
		message_free(m);
		milter_fixture_free(fx);
		fake_smtp_free(s);
	}
}

static void
test_an_inbound_copy_not_queued_temp_fails(void **state)
{
	const enum smtp_step steps[] = { SMTP_RCPT, SMTP_DATA, SMTP_DOT };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct milter_fixture *fx;
		struct message *m;
		struct outcome out;

		s->reply[steps[i]] = "451 4.3.0 not now\r\n";
		fx = fixture_new(s, true, "On-InternalError accept");
		milter_fixture_store(fx, "ann@a.test", ann_cert, ann_key);
		m = inbound_message(fx, "ann@a.test,cal@a.test");
		fake_smtp_serve(s);
		run(fx, m, NULL, &out);
		fake_smtp_stop(s);
		if (out.verdict != VERDICT_TEMPFAIL || strstr(out.detail, "split delivery: re-injection: ") == NULL ||
		    strstr(out.detail, "451 4.3.0 not now") == NULL)
			fail_msg("step %d: verdict %d: %s", steps[i], out.verdict, out.detail);
		assert_string_equal(out.rcode, "451");
		assert_string_equal(out.xcode, "4.3.0");
		assert_string_equal(dels_of(fx), "");
		message_free(m);
		milter_fixture_free(fx);
		fake_smtp_free(s);
	}
}

static void
test_inbound_without_split_delivery_stays_encrypted(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct milter_fixture *fx = fixture_new(s, false, "");
	struct message *m;
	struct outcome out;

	milter_fixture_store(fx, "ann@a.test", ann_cert, ann_key);
	m = inbound_message(fx, "ann@a.test,cal@a.test");
	fake_smtp_serve(s);
	run(fx, m, NULL, &out);
	fake_smtp_stop(s);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "not-decrypted");
	assert_string_equal(out.detail, "no private key for cal@a.test (no ReinjectTo for split delivery); "
	    "forged fields removed: 1 X-Cables, 0 Authentication-Results (mx.a.test)");
	assert_int_equal(fx->fake.body.len, 0);
	assert_int_equal(s->nsessions, 0);
	assert_string_equal(dels_of(fx), "");
	message_free(m);
	milter_fixture_free(fx);
	/* Then the target's copy stays encrypted too, so the target's own On-DecryptError counts. */
	fx = fixture_new(s, false, "Policy ann@a.test On-DecryptError=quarantine");
	milter_fixture_store(fx, "ann@a.test", ann_cert, ann_key);
	m = inbound_message(fx, "ann@a.test,cal@a.test");
	run(fx, m, NULL, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_string_equal(out.what, "quarantine");
	assert_non_null(strstr(fx->fake.ops.data, "quarantine Cables: not-decrypted: no private key for cal@a.test"));
	message_free(m);
	milter_fixture_free(fx);
	fake_smtp_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_copy_with_a_valid_marker_passes_unchanged),
		cmocka_unit_test(test_a_marker_that_does_not_verify_is_removed_and_the_message_handled),
		cmocka_unit_test(test_an_early_decision_waits_for_the_marker_check),
		cmocka_unit_test(test_a_refused_marker_removal_temp_fails),
		cmocka_unit_test(test_copies_are_described_for_the_log),
		cmocka_unit_test(test_no_copy_without_split_delivery),
		cmocka_unit_test(test_keyless_local_and_never_recipients_get_one_plaintext_copy),
		cmocka_unit_test(test_each_bcc_recipient_gets_an_encrypted_copy_of_its_own),
		cmocka_unit_test(test_without_a_visible_group_the_plaintext_one_stays),
		cmocka_unit_test(test_a_signing_sender_signs_every_copy),
		cmocka_unit_test(test_a_copy_not_queued_temp_fails_and_removes_nobody),
		cmocka_unit_test(test_a_recipient_the_mta_will_not_remove_temp_fails),
		cmocka_unit_test(test_without_split_delivery_the_old_rules_apply),
		cmocka_unit_test(test_one_group_needs_no_split),
		cmocka_unit_test(test_recipients_the_sender_did_not_encrypt_to_get_the_message_as_it_came),
		cmocka_unit_test(test_on_decrypt_error_keeps_the_message_whole),
		cmocka_unit_test(test_an_inbound_copy_not_queued_temp_fails),
		cmocka_unit_test(test_inbound_without_split_delivery_stays_encrypted),
	};

	/* As libmilter's smfi_main() does: a peer that goes away is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("split", tests, group_setup, group_teardown);
}
