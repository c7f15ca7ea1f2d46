/*
 * fuzz_inbound - a message as the milter gets it from the MTA, handled as
 * the milter handles it: inbound to bob@a.test (decryption of S/MIME with
 * bob's fixed test keys, inner header parsing, signature verification,
 * clean-up of forged fields) and outbound to a require recipient without
 * a key (the "already encrypted?" checks: mime_detect and the envelope's
 * well-formedness), each with a recording MTA.
 *
 * Input: a header section, an empty line and the body.  Fields are passed
 * as the MTA passes them (values without the leading blank, folded lines
 * with LF).  Two pseudo-fields are not passed on: "X-Fuzz-Rcpt: <addr>"
 * adds an envelope recipient (default: bob@a.test alone), and
 * "X-Fuzz-Leadspc:" makes the MTA keep the space after the colon.
 *
 * Set up once: a key store in a scratch directory holding bob's RSA and EC
 * test keys, the test CA as TrustAnchors, a fixed clock.  Certificate
 * harvesting is off, so that no run changes the store.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "../unit/helpers.h"
#include "dispatch.h"
#include "fuzz.h"
#include "inbound.h"
#include "mime.h"
#include "outbound.h"
#include "smime.h"
#include "util.h"

#define MAX_RCPTS 8

static struct milter_fixture *fx;
static bool verbose;	/* $CABLES_FUZZ_VERBOSE: print each decision (to check the seeds) */

static void
cleanup(void)
{
	X509_STORE_free(fx->env.anchors);
	milter_fixture_free(fx);
	fx = NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cables_err err;
	X509 *certs[3];
	EVP_PKEY *keys[3];

	mime_init();
	fuzz_load_key("bob-rsa", &certs[0], &keys[0]);
	fuzz_load_key("bob-ec", &certs[1], &keys[1]);
	fuzz_load_key("alice", &certs[2], &keys[2]);
	fx = milter_fixture_new("HarvestCertificates no\nPolicy dave@b.test require\n", fuzz_now(certs, 3));
	milter_fixture_store(fx, "bob@a.test", certs[0], keys[0]);
	milter_fixture_store(fx, "bob@a.test", certs[1], keys[1]);
	if ((fx->env.anchors = smime_anchors_load(fuzz_key_path("ca"), &err)) == NULL)
		fuzz_die("%s", err.msg);
	for (int i = 0; i < 3; i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
	verbose = getenv("CABLES_FUZZ_VERBOSE") != NULL;
	atexit(cleanup);
	return 0;
}

/* The value as the MTA passes it: CRLF as LF, the leading blanks kept only with leadspc. */
static char *
mta_field_value(const char *p, size_t n, bool leadspc)
{
	struct buf v;
	size_t i = 0;

	buf_init(&v);
	buf_append(&v, "", 0);
	while (!leadspc && i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (; i < n; i++)
		if (!(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n'))
			buf_append(&v, p + i, 1);
	return v.data;	/* as a C string, it ends at a NUL */
}

static bool
all_local(const struct message *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (!m->rcpts[i].local)
			return false;
	return true;
}

/* What the milter does at end of header and end of message. */
static void
milter_run(struct message *m, bool inbound, bool leadspc)
{
	struct milter_env env = fx->env;
	struct outcome out;

	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, leadspc);
	if (inbound)
		inbound_plan(m, &env, &out);
	else
		outbound_plan(m, &env, &out);
	if (out.verdict != VERDICT_CONTINUE) {
		if (m->outer[OUTER_MARKER] == 0 && message_forged_fields(m) == 0) {
			if (verbose)
				fprintf(stderr, "%s: %s: %s (end of header)\n", m->queue_id, out.what, out.detail);
			return;
		}
		m->early = out;
		m->have_early = true;
	}
	dispatch_eom(m, &env, &fx->fake.mta, &out);
	if (out.verdict == VERDICT_CONTINUE || memchr(out.detail, '\0', sizeof(out.detail)) == NULL)
		abort();	/* no decision at end of message */
	if (verbose)
		fprintf(stderr, "%s: %s: %s\n", m->queue_id, out.what, out.detail);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct message *in, *out;
	struct mime_field f;
	size_t off = 0, nrcpts = 0;
	bool leadspc = false;

	/* The pseudo-fields first: the MTA knows the envelope before the header. */
	while (mime_field_next(p, size, &off, &f) == 1)
		if (f.name_len == 14 && str_nieq(f.name, "X-Fuzz-Leadspc", 14))
			leadspc = true;
	in = message_new(fx->cfg, "alice@b.test", false, false);
	out = message_new(fx->cfg, "bob@a.test", true, false);
	message_set_queue_id(in, "FUZZIN");
	message_set_queue_id(out, "FUZZOUT");
	in->header_leadspc = out->header_leadspc = leadspc;
	if (!message_add_rcpt(out, fx->cfg, "<dave@b.test>", NULL))
		abort();
	off = 0;
	while (mime_field_next(p, size, &off, &f) == 1) {
		char *name = xstrndup(f.name, f.name_len), *value = mta_field_value(f.value, f.value_len, leadspc);

		if (str_ieq(name, "X-Fuzz-Rcpt")) {
			if (nrcpts < MAX_RCPTS) {
				char *arg = str_trim(value);

				nrcpts++;
				(void)message_add_rcpt(in, fx->cfg, arg, NULL);
			}
		} else if (!str_ieq(name, "X-Fuzz-Leadspc")) {
			message_add_header(in, name, value);
			message_add_header(out, name, value);
		}
		free(name);
		free(value);
	}
	if (nrcpts == 0 && !message_add_rcpt(in, fx->cfg, "<bob@a.test>", NULL))
		abort();
	message_add_body(in, data + off, size - off);
	message_add_body(out, data + off, size - off);

	milter_run(in, in->nrcpts > 0 && all_local(in), leadspc);
	milter_run(out, false, leadspc);
	message_free(in);
	message_free(out);
	fake_mta_release(&fx->fake);
	fake_mta_init(&fx->fake, false);
	ERR_clear_error();
	return 0;
}
