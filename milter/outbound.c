/* outbound - decisions and encryption for outbound mail; see outbound.h. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mime.h"
#include "outbound.h"
#include "smime.h"
#include "util.h"

static void
set_outcome(struct outcome *out, enum verdict v, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
set_outcome(struct outcome *out, enum verdict v, const char *what, const char *fmt, ...)
{
	va_list ap;

	out->verdict = v;
	out->what = what;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	out->rcode = out->xcode = NULL;
	out->reply[0] = '\0';
}

/* An SMTP reply text: no control characters, and '%' doubled for libmilter. */
static void
set_reply(struct outcome *out, const char *rcode, const char *xcode, const char *text)
{
	size_t k = 0;

	out->rcode = rcode;
	out->xcode = xcode;
	for (const char *p = text; *p != '\0' && k + 2 < sizeof(out->reply); p++) {
		if ((unsigned char)*p < 32 || *p == 0x7f)
			continue;
		if (*p == '%')
			out->reply[k++] = '%';
		out->reply[k++] = *p;
	}
	out->reply[k] = '\0';
}

/* Refuse the message as On-KeyNotFound says. */
static void
refuse_no_key(struct outcome *out, const struct config *cfg, const char *reason)
{
	char text[300];

	snprintf(text, sizeof(text), "Cables: cannot encrypt as policy requires: %s", reason);
	if (cfg->on_key_not_found == ACTION_REJECT) {
		set_outcome(out, VERDICT_REJECT, "reject", "%s (policy require)", reason);
		set_reply(out, "550", "5.7.1", text);
	} else {
		set_outcome(out, VERDICT_TEMPFAIL, "tempfail", "%s (policy require)", reason);
		set_reply(out, "451", "4.7.1", text);
	}
}

/* An internal error, per On-InternalError; accept is never allowed to leak. */
static void
internal_error(struct outcome *out, const struct message *m, const struct config *cfg,
    bool accept_allowed, const char *reason)
{
	enum fail_action a = cfg->on_internal_error;

	if (a == ACTION_ACCEPT && (!accept_allowed || m->has_require))
		a = ACTION_TEMPFAIL;
	switch (a) {
	case ACTION_ACCEPT:
		set_outcome(out, VERDICT_ACCEPT, "plaintext", "internal error: %s (On-InternalError accept)", reason);
		break;
	case ACTION_REJECT:
		set_outcome(out, VERDICT_REJECT, "reject", "internal error: %s", reason);
		set_reply(out, "550", "5.3.0", "Cables: internal error while processing the message");
		break;
	case ACTION_TEMPFAIL:
		set_outcome(out, VERDICT_TEMPFAIL, "tempfail", "internal error: %s", reason);
		set_reply(out, "451", "4.3.0", "Cables: internal error, please try again later");
		break;
	}
}

/* Find a usable certificate for addr; NULL with *why set when there is none. */
static X509 *
find_cert(const struct outbound_env *env, const char *addr, char **why, cables_status *st,
    struct cables_err *err)
{
	struct key_list keys;
	struct cables_err reason;
	X509 *found = NULL;

	*why = NULL;
	*st = keystore_lookup(env->ks, addr, "smime", &keys, err);
	if (*st != CABLES_OK)
		return NULL;
	reason.msg[0] = '\0';
	for (size_t i = 0; i < keys.count && found == NULL; i++) {
		X509 *c = smime_cache_cert(env->certs, keys.items[i].public_data, keys.items[i].public_len);

		if (c == NULL) {
			cables_fail(&reason, CABLES_ERR_SYNTAX, "stored certificate %.16s cannot be decoded",
			    keys.items[i].fingerprint);
			continue;
		}
		if (smime_cert_check(c, addr, &env->cfg->addr, env->now, &reason) == CABLES_OK)
			found = c;
		else
			X509_free(c);
	}
	if (found == NULL)
		*why = keys.count == 0 ? xstrdup("no certificate") :
		    xasprintf("certificate %.16s: %s", keys.items[0].fingerprint, reason.msg);
	key_list_release(&keys);
	return found;
}

void
outbound_plan(struct message *m, const struct outbound_env *env, struct outcome *out)
{
	const struct config *cfg = env->cfg;
	size_t nlocal = 0, nremote = 0, nnever = 0;
	struct cables_err err;
	cables_status st;
	char *reason = NULL;

	m->plan = PLAN_NONE;
	m->has_require = false;
	if (!m->sender_local) {
		set_outcome(out, VERDICT_ACCEPT, "pass", "sender %s is not local",
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
		r->policy = policy_lookup(&cfg->policy, r->norm, NULL);
		if (r->policy == POLICY_NEVER)
			nnever++;
		if (r->policy == POLICY_REQUIRE)
			m->has_require = true;
	}
	if (nremote == 0) {
		set_outcome(out, VERDICT_ACCEPT, "pass", "no remote recipients");
		return;
	}
	if (nnever == nremote) {
		set_outcome(out, VERDICT_ACCEPT, "pass", "policy never for every remote recipient");
		return;
	}
	if (nlocal > 0)
		reason = xstrdup("local and remote recipients in one message (split delivery is not available)");
	else if (nnever > 0)
		reason = xstrdup("recipients with policy never and others in one message");
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->cert != NULL)
			continue;
		r->cert = find_cert(env, r->norm, &r->why_no_key, &st, &err);
		if (st != CABLES_OK) {
			free(reason);
			internal_error(out, m, cfg, true, err.msg);
			return;
		}
		if (r->cert == NULL && reason == NULL)
			reason = xasprintf("no usable S/MIME certificate for %s: %s", r->addr, r->why_no_key);
	}
	if (reason == NULL) {
		m->plan = PLAN_ENCRYPT;
		set_outcome(out, VERDICT_CONTINUE, "continue", "encrypting");
		return;
	}
	if (m->has_require) {
		/* Decided at end of message: content the sender encrypted may pass. */
		m->plan = PLAN_BLOCKED;
		strlcpy_c(m->blocked_reason, reason, sizeof(m->blocked_reason));
		set_outcome(out, VERDICT_CONTINUE, "continue", "blocked unless already encrypted");
	} else {
		set_outcome(out, VERDICT_ACCEPT, "plaintext", "%s (policy encrypt)", reason);
	}
	free(reason);
}

/* The certificates to encrypt to: every remote recipient's, deduplicated, plus the sender's. */
static STACK_OF(X509) *
collect_certs(const struct message *m, const struct outbound_env *env, bool *with_self)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *self = NULL;

	*with_self = false;
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
	if (env->cfg->encrypt_to_self && m->sender[0] != '\0') {
		char *norm = addr_normalize(m->sender, &env->cfg->addr), *why = NULL;
		cables_status st;

		if (norm != NULL)
			self = find_cert(env, norm, &why, &st, NULL);
		free(why);
		free(norm);
		if (self != NULL) {
			sk_X509_push(certs, self);	/* freed by the caller */
			*with_self = true;
		}
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

static bool
is_new_field(const struct smime_field *fields, const char *name)
{
	for (size_t i = 0; i < SMIME_OUTPUT_FIELDS; i++)
		if (str_ieq(name, fields[i].name))
			return true;
	return false;
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

/* Replace the content header fields with those of the encrypted entity. */
static int
rewrite_headers(const struct message *m, const struct mta *mta, const struct smime_field *fields,
    const char *trace)
{
	for (size_t i = 0; i < SMIME_OUTPUT_FIELDS; i++) {
		const struct smime_field *f = &fields[i];
		unsigned int n = field_count(m, f->name);
		int rc;

		rc = n > 0 ? mta->chgheader(mta->ctx, f->name, 1, f->value) :
		    mta->addheader(mta->ctx, f->name, f->value);
		if (rc != 0 || delete_fields(mta, f->name, 2, n) != 0)
			return -1;
	}
	for (size_t i = 0; i < m->ncontent; i++) {
		const struct header *h = &m->content[i];

		/* Each other name once, at its first occurrence; MIME-Version stays outside too. */
		if (h->index != 1 || is_new_field(fields, h->name) || str_ieq(h->name, "MIME-Version"))
			continue;
		if (delete_fields(mta, h->name, 1, field_count(m, h->name)) != 0)
			return -1;
	}
	if (field_count(m, "MIME-Version") == 0 && mta->addheader(mta->ctx, "MIME-Version", "1.0") != 0)
		return -1;
	return mta->insheader(mta->ctx, 0, "X-Cables", trace);
}

static void
encrypt_message(struct message *m, const struct outbound_env *env, const struct mta *mta,
    struct outcome *out)
{
	struct smime_encrypt_opts opts = { env->cfg->cipher, env->cfg->rsa_padding };
	struct body_sink bs = { mta, false };
	struct byte_sink sink = { body_sink_write, &bs };
	STACK_OF(X509) *certs;
	struct buf head;
	struct cables_err err;
	cables_status st;
	bool with_self;
	char trace[160];
	int nrecipients;

	certs = collect_certs(m, env, &with_self);
	nrecipients = sk_X509_num(certs) - (with_self ? 1 : 0);
	buf_init(&head);
	message_content_head(m, &head);
	st = smime_encrypt(&opts, certs, head.data, head.len, m->body, &sink, &err);
	OPENSSL_cleanse(head.data, head.len);
	buf_release(&head);
	if (with_self)
		X509_free(sk_X509_value(certs, sk_X509_num(certs) - 1));
	sk_X509_free(certs);
	if (st != CABLES_OK) {
		internal_error(out, m, env->cfg, !bs.started, err.msg);
		return;
	}
	snprintf(trace, sizeof(trace), "encrypted; format=smime; cipher=%s; recipients=%d%s",
	    cipher_name(env->cfg->cipher), nrecipients, with_self ? "; self" : "");
	if (rewrite_headers(m, mta, smime_output_fields(env->cfg->cipher), trace) != 0) {
		internal_error(out, m, env->cfg, false, "the MTA refused a header change");
		return;
	}
	set_outcome(out, VERDICT_MODIFIED, "encrypted", "format=smime cipher=%s recipients=%d%s size=%zu",
	    cipher_name(env->cfg->cipher), nrecipients, with_self ? " +self" : "", spool_size(m->body));
}

void
outbound_finish(struct message *m, const struct outbound_env *env, const struct mta *mta,
    struct outcome *out)
{
	enum mime_crypto crypto;
	struct cables_err err;

	if (m->plan == PLAN_NONE) {
		internal_error(out, m, env->cfg, true, "end of message without a plan");
		return;
	}
	if (m->body_status == CABLES_ERR_TOOBIG) {
		if (m->has_require) {
			set_outcome(out, VERDICT_REJECT, "reject", "%s (policy require)", m->body_err.msg);
			set_reply(out, "552", "5.3.4", "Cables: message too large to encrypt");
		} else {
			set_outcome(out, VERDICT_ACCEPT, "plaintext", "%s (policy encrypt)", m->body_err.msg);
		}
		return;
	}
	if (m->body_status != CABLES_OK) {
		internal_error(out, m, env->cfg, true, m->body_err.msg);
		return;
	}
	if (mime_detect(message_header_value(m, "Content-Type"),
	    message_header_value(m, "Content-Transfer-Encoding"), m->body, &crypto, &err) != CABLES_OK) {
		internal_error(out, m, env->cfg, true, err.msg);
		return;
	}
	if (crypto != MIME_PLAIN) {
		set_outcome(out, VERDICT_ACCEPT, "pass", "already encrypted (%s)", mime_crypto_name(crypto));
		return;
	}
	if (m->plan == PLAN_BLOCKED) {
		refuse_no_key(out, env->cfg, m->blocked_reason);
		return;
	}
	encrypt_message(m, env, mta, out);
}
