/* outbound - decisions, signatures and encryption for outbound mail; see outbound.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "mime.h"
#include "outbound.h"
#include "smime.h"
#include "util.h"

/* Refuse the message as On-KeyNotFound says. */
static void
refuse_no_key(struct outcome *out, enum fail_action action, const char *reason)
{
	char text[300];

	snprintf(text, sizeof(text), "Cables: cannot encrypt as policy requires: %s", reason);
	if (action == ACTION_REJECT) {
		outcome_set(out, VERDICT_REJECT, "reject", "%s (policy require)", reason);
		outcome_reply(out, "550", "5.7.1", text);
	} else {
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "%s (policy require)", reason);
		outcome_reply(out, "451", "4.7.1", text);
	}
}

/*
 * Should this message be signed, and with what?  Only for a trusted client
 * whose sender address is local and whose Sign setting is yes.
 */
static cables_status
plan_signature(struct message *m, const struct milter_env *env, struct cables_err *err)
{
	const struct config *cfg = env->cfg;
	char *norm, *why = NULL;
	struct key_pair *pairs;
	size_t n;
	cables_status st = CABLES_OK;

	if (!m->client_trusted || m->sender[0] == '\0')
		return CABLES_OK;
	norm = addr_normalize(m->sender, &cfg->addr);
	if (norm == NULL || !domain_list_match(&cfg->local_domains, addr_domain(norm)) ||
	    !policy_get(&cfg->policy, norm, PA_SIGN, NULL)) {
		free(norm);
		return CABLES_OK;
	}
	m->sign_cert = keys_cert(env, norm, KEY_SIGN, &why, &st, err);
	if (st == CABLES_OK && m->sign_cert != NULL &&
	    (st = keys_private(env, norm, &pairs, &n, err)) == CABLES_OK) {
		for (size_t i = 0; i < n && m->sign_key == NULL; i++)
			if (X509_cmp(pairs[i].cert, m->sign_cert) == 0) {
				m->sign_key = pairs[i].key;
				EVP_PKEY_up_ref(m->sign_key);
			}
		key_pairs_free(pairs, n);
	}
	if (st == CABLES_OK && m->sign_key == NULL) {
		snprintf(m->sign_note, sizeof(m->sign_note), "unsigned: no signing key for %s: %s", norm,
		    why != NULL ? why : "no private key");
		X509_free(m->sign_cert);
		m->sign_cert = NULL;
	}
	free(why);
	free(norm);
	return st;
}

/* " (unsigned: ...)" or "" for log details. */
static const char *
sign_note(const struct message *m, char *buf, size_t len)
{
	if (m->sign_note[0] == '\0')
		return "";
	snprintf(buf, len, " (%s)", m->sign_note);
	return buf;
}

void
outbound_plan(struct message *m, const struct milter_env *env, struct outcome *out)
{
	const struct config *cfg = env->cfg;
	size_t nlocal = 0, nremote = 0, nnever = 0;
	struct cables_err err;
	cables_status st;
	char *reason = NULL, note[300];

	m->plan = PLAN_NONE;
	m->has_require = false;
	m->on_key_not_found = ACTION_ACCEPT;
	message_combine_actions(m, cfg);
	if (!m->sender_local) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "sender %s is not local",
		    m->sender[0] != '\0' ? m->sender : "<>");
		return;
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local) {
			nlocal++;
			continue;
		}
		nremote++;
		r->policy = (enum enc_policy)policy_get(&cfg->policy, r->norm, PA_POLICY, NULL);
		if (r->policy == POLICY_NEVER)
			nnever++;
		if (r->policy == POLICY_REQUIRE)
			m->has_require = true;
	}
	if (nremote == 0) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "no remote recipients");
		return;
	}
	if ((st = plan_signature(m, env, &err)) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		return;
	}
	if (nnever == nremote) {
		reason = xstrdup("policy never for every remote recipient");
	} else if (nlocal > 0) {
		reason = xstrdup("local and remote recipients in one message (split delivery is not available)");
	} else if (nnever > 0) {
		reason = xstrdup("recipients with policy never and others in one message");
	}
	for (size_t i = 0; i < m->nrcpts && nnever < nremote; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->cert != NULL)
			continue;
		r->cert = keys_cert(env, r->norm, KEY_ENCRYPT, &r->why_no_key, &st, &err);
		if (st != CABLES_OK) {
			free(reason);
			outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
			return;
		}
		if (r->cert == NULL && reason == NULL)
			reason = xasprintf("no usable S/MIME certificate for %s: %s", r->addr, r->why_no_key);
		if (r->cert == NULL && r->policy == POLICY_REQUIRE)
			m->on_key_not_found = fail_action_combine(m->on_key_not_found,
			    (enum fail_action)policy_get(&cfg->policy, r->norm, PA_ON_KEY_NOT_FOUND, NULL));
	}
	if (reason == NULL) {
		m->plan = PLAN_ENCRYPT;
		outcome_set(out, VERDICT_CONTINUE, "continue", "encrypting");
	} else if (m->has_require) {
		/* Decided at end of message: content the sender encrypted may pass. */
		m->plan = PLAN_BLOCKED;
		strlcpy_c(m->blocked_reason, reason, sizeof(m->blocked_reason));
		outcome_set(out, VERDICT_CONTINUE, "continue", "blocked unless already encrypted");
	} else if (m->sign_key != NULL) {
		m->plan = PLAN_SIGN_ONLY;
		strlcpy_c(m->blocked_reason, reason, sizeof(m->blocked_reason));
		outcome_set(out, VERDICT_CONTINUE, "continue", "signing only");
	} else if (nnever == nremote) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "%s%s", reason, sign_note(m, note, sizeof(note)));
	} else {
		outcome_set(out, VERDICT_ACCEPT, "plaintext", "%s (policy encrypt)%s", reason,
		    sign_note(m, note, sizeof(note)));
	}
	free(reason);
}

/* The certificates to encrypt to: every remote recipient's, deduplicated, plus the sender's. */
static STACK_OF(X509) *
collect_certs(const struct message *m, const struct milter_env *env, X509 **self)
{
	STACK_OF(X509) *certs = sk_X509_new_null();

	*self = NULL;
	for (size_t i = 0; i < m->nrcpts; i++) {
		X509 *c = m->rcpts[i].cert;
		bool dup = false;

		if (c == NULL)
			continue;
		for (int j = 0; j < sk_X509_num(certs) && !dup; j++)
			dup = X509_cmp(sk_X509_value(certs, j), c) == 0;
		if (!dup)
			sk_X509_push(certs, c);
	}
	if (m->sender[0] != '\0') {
		char *norm = addr_normalize(m->sender, &env->cfg->addr), *why = NULL;
		cables_status st;

		if (norm != NULL && policy_get(&env->cfg->policy, norm, PA_SELF, NULL))
			*self = keys_cert(env, norm, KEY_ENCRYPT, &why, &st, NULL);
		free(why);
		free(norm);
		if (*self != NULL)
			sk_X509_push(certs, *self);
	}
	return certs;
}

struct body_sink {
	const struct mta *mta;
	bool started;
};

static cables_status
body_sink_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	struct body_sink *bs = arg;

	bs->started = true;
	if (bs->mta->replacebody(bs->mta->ctx, p, n) != 0)
		return cables_fail(err, CABLES_ERR_IO, "the MTA refused the replacement body");
	return CABLES_OK;
}

static unsigned int
field_count(const struct message *m, const char *name)
{
	unsigned int n = 0;

	for (size_t i = 0; i < m->ncontent; i++)
		if (str_ieq(m->content[i].name, name))
			n++;
	return n;
}

/* Delete occurrences from..count of name, last first so indexes stay valid. */
static int
delete_fields(const struct mta *mta, const char *name, unsigned int from, unsigned int count)
{
	for (unsigned int i = count; i >= from && i > 0; i--)
		if (mta->chgheader(mta->ctx, name, (int)i, NULL) != 0)
			return -1;
	return 0;
}

static bool
in_fields(const struct smime_field *fields, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (str_ieq(name, fields[i].name))
			return true;
	return false;
}

/* Set one field to a constant value (replacing the first occurrence, deleting others). */
static int
set_field(const struct message *m, const struct mta *mta, const char *name, const char *value)
{
	unsigned int n = field_count(m, name);
	char *raw = xasprintf(" %s", value), *v = mta_value(mta, raw);
	int rc;

	rc = n > 0 ? mta->chgheader(mta->ctx, name, 1, v) : mta->addheader(mta->ctx, name, v);
	free(raw);
	free(v);
	return rc != 0 ? -1 : delete_fields(mta, name, 2, n);
}

/*
 * Replace the content header fields with fields[0..n): each is set, every
 * other content field is removed (MIME-Version stays, and is added if
 * missing), and the trace field goes first.
 */
static int
rewrite_headers(const struct message *m, const struct mta *mta, const struct smime_field *fields, size_t n,
    const char *trace)
{
	char *raw, *v;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (set_field(m, mta, fields[i].name, fields[i].value) != 0)
			return -1;
	for (size_t i = 0; i < m->ncontent; i++) {
		const struct header *h = &m->content[i];

		/* Each other name once, at its first occurrence. */
		if (h->index != 1 || in_fields(fields, n, h->name) || str_ieq(h->name, "MIME-Version"))
			continue;
		if (delete_fields(mta, h->name, 1, field_count(m, h->name)) != 0)
			return -1;
	}
	if (field_count(m, "MIME-Version") == 0 && set_field(m, mta, "MIME-Version", "1.0") != 0)
		return -1;
	raw = xasprintf(" %s", trace);
	v = mta_value(mta, raw);
	rc = mta->insheader(mta->ctx, 0, "X-Cables", v);
	free(raw);
	free(v);
	return rc;
}

/* Is the content already signed by the sender's client? */
static bool
already_signed(const struct message *m)
{
	struct mime_type t;
	bool yes;

	mime_type_parse(message_header_value(m, "Content-Type"), &t);
	yes = (mime_type_is(&t, "multipart", "signed") && t.protocol != NULL) ||
	    ((mime_type_is(&t, "application", "pkcs7-mime") || mime_type_is(&t, "application", "x-pkcs7-mime")) &&
	    t.smime_type != NULL && str_ieq(t.smime_type, "signed-data"));
	mime_type_release(&t);
	return yes;
}

/* Encrypt (after signing, when a signature is wanted); see outbound.h. */
static void
encrypt_message(struct message *m, const struct milter_env *env, const struct mta *mta,
    const struct smime_signed *sig, struct outcome *out)
{
	struct smime_encrypt_opts opts = { env->cfg->cipher, env->cfg->rsa_padding };
	struct body_sink bs = { mta, false };
	struct byte_sink sink = { body_sink_write, &bs };
	STACK_OF(X509) *certs;
	X509 *self;
	struct entity_src src;
	struct buf head, sig_head;
	struct cables_err err;
	cables_status st;
	char trace[200];
	int nrecipients;
	bool with_self;

	certs = collect_certs(m, env, &self);
	with_self = self != NULL;
	nrecipients = sk_X509_num(certs) - (with_self ? 1 : 0);
	buf_init(&head);
	buf_init(&sig_head);
	message_content_head(m, &head);
	entity_src_init(&src);
	if (sig != NULL) {
		/* The encrypted entity is the multipart/signed one. */
		buf_printf(&sig_head, "Content-Type: %s\r\n\r\n", sig->content_type);
		entity_src_mem(&src, sig_head.data, sig_head.len);
		entity_src_mem(&src, sig->prologue.data, sig->prologue.len);
	}
	entity_src_mem(&src, head.data, head.len);
	entity_src_spool(&src, m->body, 0, -1);
	if (sig != NULL)
		entity_src_mem(&src, sig->epilogue.data, sig->epilogue.len);
	st = smime_encrypt(&opts, certs, &src, &sink, &err);
	OPENSSL_cleanse(head.data, head.len);
	buf_release(&head);
	buf_release(&sig_head);
	X509_free(self);
	sk_X509_free(certs);
	if (st != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, !bs.started, m->has_require, err.msg);
		return;
	}
	snprintf(trace, sizeof(trace), "encrypted; format=smime; cipher=%s; recipients=%d%s%s",
	    cipher_name(env->cfg->cipher), nrecipients, with_self ? "; self" : "", sig != NULL ? "; signed" : "");
	if (rewrite_headers(m, mta, smime_output_fields(env->cfg->cipher), SMIME_OUTPUT_FIELDS, trace) != 0) {
		outcome_internal_error(out, m->on_internal_error, false, m->has_require, "the MTA refused a header change");
		return;
	}
	outcome_set(out, VERDICT_MODIFIED, "encrypted", "format=smime cipher=%s recipients=%d%s%s size=%zu%s%s",
	    cipher_name(env->cfg->cipher), nrecipients, with_self ? " +self" : "",
	    sig != NULL ? " signed" : "", spool_size(m->body), m->sign_note[0] != '\0' ? " " : "", m->sign_note);
}

/* Replace the content with the multipart/signed entity (the message leaves unencrypted). */
static void
clear_sign(struct message *m, const struct milter_env *env, const struct mta *mta,
    const struct smime_signed *sig, struct outcome *out)
{
	struct smime_field ct = { "Content-Type", sig->content_type };
	struct buf head;
	const char *reason = m->blocked_reason;
	int rc;

	buf_init(&head);
	message_content_head(m, &head);
	rc = mta->replacebody(mta->ctx, sig->prologue.data, sig->prologue.len) == 0 &&
	    mta->replacebody(mta->ctx, head.data, head.len) == 0 &&
	    mta_replace_body(mta, m->body, 0, (off_t)spool_size(m->body)) == 0 &&
	    mta->replacebody(mta->ctx, sig->epilogue.data, sig->epilogue.len) == 0 ? 0 : -1;
	buf_release(&head);
	if (rc == 0)
		rc = rewrite_headers(m, mta, &ct, 1, "signed; format=smime");
	if (rc != 0) {
		outcome_internal_error(out, m->on_internal_error, false, m->has_require, "the MTA refused a change");
		return;
	}
	outcome_set(out, VERDICT_MODIFIED, "signed", "format=smime, not encrypted: %s", reason);
}

void
outbound_finish(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out)
{
	enum mime_crypto crypto;
	struct smime_signed sig;
	struct entity_src src;
	struct buf head;
	struct cables_err err;
	bool signing;

	if (m->plan == PLAN_NONE) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, "end of message without a plan");
		return;
	}
	if (m->body_status == CABLES_ERR_TOOBIG) {
		if (m->has_require) {
			outcome_set(out, VERDICT_REJECT, "reject", "%s (policy require)", m->body_err.msg);
			outcome_reply(out, "552", "5.3.4", "Cables: message too large to encrypt");
		} else {
			outcome_set(out, VERDICT_ACCEPT, "plaintext", "%s (policy encrypt)", m->body_err.msg);
		}
		return;
	}
	if (m->body_status != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, m->body_err.msg);
		return;
	}
	if (mime_detect(message_header_value(m, "Content-Type"),
	    message_header_value(m, "Content-Transfer-Encoding"), m->body, &crypto, &err) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		return;
	}
	if (crypto != MIME_PLAIN) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "already encrypted (%s)", mime_crypto_name(crypto));
		return;
	}
	if (m->plan == PLAN_BLOCKED) {
		refuse_no_key(out, m->on_key_not_found, m->blocked_reason);
		return;
	}
	signing = m->sign_key != NULL && !already_signed(m);
	if (!signing) {
		if (m->plan == PLAN_SIGN_ONLY) {
			outcome_set(out, VERDICT_ACCEPT, "pass", "already signed; not encrypted: %s", m->blocked_reason);
			return;
		}
		encrypt_message(m, env, mta, NULL, out);
		return;
	}
	buf_init(&head);
	message_content_head(m, &head);
	entity_src_init(&src);
	entity_src_mem(&src, head.data, head.len);
	entity_src_spool(&src, m->body, 0, -1);
	if (smime_sign(m->sign_cert, m->sign_key, NULL, &src, &sig, &err) != CABLES_OK) {
		buf_release(&head);
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		return;
	}
	buf_release(&head);
	if (m->plan == PLAN_SIGN_ONLY)
		clear_sign(m, env, mta, &sig, out);
	else
		encrypt_message(m, env, mta, &sig, out);
	smime_signed_release(&sig);
}
