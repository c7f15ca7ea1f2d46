/* inbound - decryption, verification and clean-up for local recipients; see inbound.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "authres.h"
#include "copies.h"
#include "handler.h"
#include "inbound.h"
#include "log.h"
#include "mime.h"
#include "restore.h"
#include "util.h"

#define INNER_HEAD_MAX (256 * 1024)

/* The handler whose signed form an entity with this Content-Type is, or NULL. */
static const struct body_handler *
signed_by(const char *content_type)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (handlers[i]->is_signed(content_type))
			return handlers[i];
	return NULL;
}

/* The handler that could claim the body at least as surely as at_least says, or NULL. */
static const struct body_handler *
may_claim(const struct message *m, const struct milter_env *env, enum handler_claim at_least)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (handlers[i]->may_claim(m, env) >= at_least)
			return handlers[i];
	return NULL;
}

void
inbound_plan(struct message *m, const struct milter_env *env, struct outcome *out)
{
	m->plan = PLAN_INBOUND;
	message_combine_actions(m, env->cfg);
	if (signed_by(message_header_value(m, "Content-Type")) == NULL && may_claim(m, env, CLAIM_MAYBE) == NULL) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "inbound, not encrypted or signed");
		return;
	}
	outcome_set(out, VERDICT_CONTINUE, "continue", "inbound");
}

/*
 * What the local recipients are told, and the log line, built up as the
 * message is handled: decryption in an X-Cables field (ours alone: every
 * received one is removed first, see dispatch.c), signatures in an
 * Authentication-Results field with our authserv-id.
 */
struct report {
	struct buf field;	/* X-Cables value; empty: no field */
	struct buf ar;		/* Authentication-Results resinfo ("; method=result ..."); empty: no field */
	struct buf log;
};

static void
report_init(struct report *r)
{
	buf_init(&r->field);
	buf_init(&r->ar);
	buf_init(&r->log);
}

static void
report_release(struct report *r)
{
	buf_release(&r->field);
	buf_release(&r->ar);
	buf_release(&r->log);
}

/* Append before, value (made quoted-string safe) and after to the X-Cables value. */
static void
report_add(struct report *r, const char *before, const char *value, const char *after)
{
	buf_appends(&r->field, before);
	for (const char *p = value; *p != '\0'; p++)
		buf_append(&r->field, *p == '"' || *p == '\\' || (unsigned char)*p < 32 ? "'" : p, 1);
	buf_appends(&r->field, after);
}

static int
insert_field(const struct mta *mta, const char *name, const char *value)
{
	char *raw = xasprintf(" %s", value), *v = mta_value(mta, raw);
	int rc = mta->insheader(mta->ctx, 0, name, v);

	free(raw);
	free(v);
	return rc;
}

/* The fields of the report, on top: Authentication-Results first, then X-Cables. */
static int
add_report(const struct message *m, const struct mta *mta, struct report *r)
{
	struct buf ar;
	int rc = 0;

	if (r->field.len > 0)
		rc = insert_field(mta, "X-Cables", r->field.data);
	if (rc == 0 && r->ar.len > 0) {
		buf_init(&ar);
		authres_value(&ar, m->authserv_id);
		buf_append(&ar, r->ar.data, r->ar.len);
		rc = insert_field(mta, "Authentication-Results", ar.data);
		buf_release(&ar);
	}
	return rc;
}

/*
 * The Authentication-Results method of a signature format: "smime" is
 * RFC 7281's.  OpenPGP has no registered method (draft-ser-authentication-
 * results-openpgp expired unregistered), and an unregistered name without
 * the experimental "x-" prefix could later be given another meaning, so
 * OpenPGP results use "x-pgp"; cables-milter(8) documents both.
 */
static const char *
authres_method(const char *format)
{
	return format != NULL && strcmp(format, "smime") == 0 ? "smime" : "x-pgp";
}

/* One resinfo: "; METHOD=RESULT [reason=...] [PROPERTY=...] [header.from=...]"; every value quoted. */
static void
report_authres(struct report *r, const char *format, const char *result, const char *reason, const char *signer,
    const char *from)
{
	const char *method = authres_method(format);

	buf_printf(&r->ar, "; %s=%s", method, result);
	if (reason != NULL && reason[0] != '\0') {
		buf_appends(&r->ar, " reason=");
		authres_quote(&r->ar, reason);
	}
	if (signer != NULL && signer[0] != '\0') {
		buf_printf(&r->ar, " body.%s-identifier=", strcmp(method, "smime") == 0 ? "smime" : "pgp");
		authres_quote(&r->ar, signer);
	}
	if (from != NULL) {
		buf_appends(&r->ar, " header.from=");
		authres_quote(&r->ar, from);
	}
}

/*
 * Does a valid signature speak for addr (normalised)?  Through
 * TrustAnchors, for every address its certificate names; through the key
 * store, only for the address the store holds its key for, whatever else
 * the certificate lists.
 */
static bool
sig_speaks_for(const struct milter_env *env, const struct handler_sig *sig, const char *addr)
{
	if (addr == NULL || sig->status != HANDLER_SIG_VALID)
		return false;
	if (sig->held_for[0] != '\0' && strcmp(sig->held_for, addr) != 0)
		return false;
	if (sig->key != NULL)
		return handler_key_names(env, sig->key, addr);
	return sig->held_for[0] != '\0';
}

/*
 * Describe a signature of this format in the report: pass when valid and
 * made by the From address; policy when valid but by someone else, or not
 * trusted (RFC 7281's "not acceptable to the ADMD"); fail when invalid.
 */
static void
report_signature(struct report *r, const struct handler_sig *sig, const char *from_field, const char *format,
    const struct milter_env *env)
{
	char *from = mime_first_address(from_field), *nfrom = NULL;
	bool match = true;
	const char *result = sig->status == HANDLER_SIG_VALID ? "pass" : sig->status == HANDLER_SIG_INVALID ? "fail" :
	    "policy";
	char reason[CABLES_ERR_MAX + 64];

	buf_printf(&r->log, " signature=%s", handler_sig_status_name(sig->status));
	if (sig->signer[0] != '\0')
		buf_printf(&r->log, " signer=%s", sig->signer);
	if (sig->reason[0] != '\0')
		buf_printf(&r->log, " (%s)", sig->reason);
	if (sig->status == HANDLER_SIG_VALID) {
		nfrom = from != NULL ? addr_normalize(from, &env->cfg->addr) : NULL;
		match = sig_speaks_for(env, sig, nfrom);
	} else if (sig->key != NULL && sig->status != HANDLER_SIG_INVALID) {
		nfrom = from != NULL ? addr_normalize(from, &env->cfg->addr) : NULL;
		match = handler_key_names(env, sig->key, nfrom);
		if (!match)
			buf_printf(&r->log, " signer-mismatch");
	}
	snprintf(reason, sizeof(reason), "%s%s%s", sig->reason,
	    !match && sig->reason[0] != '\0' ? "; " : "", match ? "" : "the signer is not the From address");
	report_authres(r, format, match ? result : sig->status == HANDLER_SIG_VALID ? "policy" : result, reason,
	    sig->signer, match ? NULL : from != NULL ? from : "");
	free(from);
	free(nfrom);
}

/*
 * After a valid signature, keep the signer's certificate for replies: for
 * the From address the signature covers (from_field), if it names it.
 */
static void
harvest(const struct milter_env *env, const struct handler_sig *sig, const char *from_field, struct report *r)
{
	char why[CABLES_ERR_MAX + 256], *from;
	enum harvest_outcome o;

	if (!env->cfg->harvest_certificates || sig->status != HANDLER_SIG_VALID || sig->key == NULL)
		return;
	from = mime_first_address(from_field);
	o = handler_key_harvest(env, sig->key, from, why, sizeof(why));
	buf_printf(&r->log, " harvest=%s (%s)", harvest_outcome_name(o), why);
	free(from);
}

/* Verify a signed entity (its body from offset from of sp) with the handler whose format it is; false if not signed. */
static bool
verify_content(const struct milter_env *env, const char *content_type, const char *cte, const struct spool *sp,
    off_t from, const char *from_field, struct handler_sig *sig, const char **format)
{
	const struct body_handler *h = signed_by(content_type);

	*format = h != NULL ? h->name : NULL;
	return h != NULL && h->verify(env, content_type, cte, sp, from, from_field, sig);
}

/* What a checked signature vouches for, for hp_restore_identity(). */
struct signer_check {
	const struct milter_env *env;
	const struct handler_sig *sig;
	bool verified;		/* there was a signature covering the payload header, and sig says what it is */
};

/*
 * Was the signature over the protected fields made by addr (exact form)?
 * Only a valid one that speaks for addr (sig_speaks_for): through
 * TrustAnchors when its certificate names addr, through the key store
 * when the store holds the key for addr itself.  A sub-address is never
 * vouched for, as in harvesting: bob-x@ may be someone else's mailbox
 * than bob@.
 */
static bool
signature_vouches(void *arg, const char *addr)
{
	const struct signer_check *c = arg;
	char *folded;
	bool own;

	if (!c->verified || c->sig->status != HANDLER_SIG_VALID)
		return false;
	folded = addr_normalize(addr, &c->env->cfg->addr);
	own = folded != NULL && strcmp(folded, addr) == 0;
	free(folded);
	return own && sig_speaks_for(c->env, c->sig, addr);
}

/* The From the reader is shown: the protected one when it was restored, else the outer one. */
static const char *
shown_from(const struct restore *rs, const struct message *m)
{
	const char *p = restore_protected_from(rs);

	return p != NULL && rs->identity_decided && rs->id.from != HP_IDENTITY_KEPT ? p : m->from;
}

/* The X-Cables words for protected identities that were not restored. */
static void
report_identity(struct report *r, const struct restore *rs)
{
	if (rs->id.from != HP_IDENTITY_KEPT && rs->id.sender != HP_IDENTITY_KEPT)
		return;
	if (rs->id.from == HP_IDENTITY_KEPT)
		buf_appends(&r->field, "; from=outer");
	if (rs->id.sender == HP_IDENTITY_KEPT)
		buf_appends(&r->field, "; sender=outer");
	report_add(r, "; protected-identity=\"", rs->id.claimed, "\"");
}

/*
 * Who the protected To and Cc name.  A genuine signed message re-encrypted
 * by someone else to a local user (surreptitious forwarding) arrives with
 * its From restored and signed, and its protected To and Cc, restored too,
 * naming its first recipients: RFC 9788's reader shows the protected
 * fields, and they are what tells this reader the message was written for
 * someone else.  Bcc, lists and aliases give the same picture, so it is
 * said, never refused: the log line names every target the protected To
 * and Cc leave out; X-Cables says "protected-to=others" only when they
 * name none of the copy's targets, since a field every target sees must not
 * tell one of them that another, unnamed (a Bcc), got the same copy.
 */
static void
report_addressed(struct report *r, const struct restore *rs, const struct message *m, const struct milter_env *env,
    const bool *target, const bool *own)
{
	size_t targets = 0, unnamed = 0;
	const char **addrs = xcalloc(m->nrcpts + 1, sizeof(*addrs));
	bool *named = xcalloc(m->nrcpts + 1, sizeof(*named));

	for (size_t i = 0; i < m->nrcpts; i++)
		if (target[i] && (own == NULL || !own[i]) && m->rcpts[i].norm != NULL)
			addrs[targets++] = m->rcpts[i].norm;
	restore_names_each(rs, addrs, targets, &env->cfg->addr, named);
	for (size_t j = 0; j < targets; j++) {
		if (named[j])
			continue;
		buf_printf(&r->log, "%s%s", unnamed++ == 0 ? " addressed=elsewhere (not in the protected To or Cc: " :
		    ", ", addrs[j]);
	}
	free(addrs);
	free(named);
	if (unnamed > 0)
		buf_appends(&r->log, ")");
	if (targets > 0 && unnamed == targets)
		buf_appends(&r->field, "; protected-to=others");
}

/* The inner entity's header section: fields in memory, body offset. */
struct inner {
	char *head;
	size_t head_len;
	size_t body_off;
	char *content_type;	/* first Content-Type value, or NULL */
	char *cte;
	char *from;		/* protected From, when the inner entity carries one */
	bool protected_headers;	/* Content-Type has hp= or protected-headers= */
};

static void
inner_release(struct inner *in)
{
	free(in->head);
	free(in->content_type);
	free(in->cte);
	free(in->from);
}

/* The entity's header section, the entity starting at from in plain (after a padding field). */
static cables_status
read_inner(const struct spool *plain, off_t from, struct inner *in, struct cables_err *err)
{
	size_t left = spool_size(plain) - (size_t)from, got, off = 0;
	size_t len = left < INNER_HEAD_MAX ? left : INNER_HEAD_MAX;
	struct mime_field f;
	cables_status st;

	memset(in, 0, sizeof(*in));
	in->head = xmalloc(len + 1);
	if ((st = spool_pread(plain, from, in->head, len, &got, err)) != CABLES_OK)
		return st;
	while (mime_field_next(in->head, got, &off, &f) == 1) {
		char *value = xstrndup(f.value, f.value_len);

		if (in->content_type == NULL && f.name_len == 12 && str_nieq(f.name, "Content-Type", 12))
			in->content_type = xstrdup(value);
		else if (in->cte == NULL && f.name_len == 25 && str_nieq(f.name, "Content-Transfer-Encoding", 25))
			in->cte = xstrdup(value);
		else if (in->from == NULL && f.name_len == 4 && str_nieq(f.name, "From", 4))
			in->from = xstrdup(value);
		free(value);
	}
	if (off >= got && got == INNER_HEAD_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "the decrypted header section exceeds 256 KB");
	in->head_len = off;
	in->body_off = (size_t)from + off;
	if (in->content_type != NULL) {
		char *hp = mime_type_param(in->content_type, "hp"), *ph = mime_type_param(in->content_type,
		    "protected-headers");

		in->protected_headers = hp != NULL || ph != NULL;
		free(hp);
		free(ph);
	}
	return CABLES_OK;
}

/*
 * Check the signature of a decrypted entity (its header section in) for
 * the From it is judged for (*judged: the protected From, which only a
 * signature by that address lets through, else the outer one), then decide
 * rs's protected identities under it.  *verified: there was a signature,
 * and sig says what it is.  It vouches for the protected fields only when
 * it covers the payload header they were read from: a signature made in
 * the same pass as the encryption covers the whole plaintext; a separate
 * one only a multipart/signed entity's first part, which restore_plan
 * took as the payload (rs->is_signed).  An opaque signed-data entity's
 * signature covers the content inside it, never the entity's own header
 * section, which anyone could have written around a replayed signature.
 * Errors are the spool's.
 */
static cables_status
check_entity(struct restore *rs, const struct message *m, const struct milter_env *env,
    const struct body_handler *h, struct handler_msg *hm, const struct spool *plain, const struct inner *in,
    struct handler_sig *sig, const char **format, const char **judged, bool *verified, struct cables_err *err)
{
	struct addr_opts exact = env->cfg->addr;
	struct signer_check c = { env, sig, false };
	struct hp_vouch v = { &exact, signature_vouches, &c };

	*format = h->name;
	*judged = restore_protected_from(rs) != NULL ? restore_protected_from(rs) : m->from;
	if (h->signature(hm, env, *judged, sig)) {
		*verified = c.verified = true;
	} else {
		*verified = verify_content(env, in->content_type, in->cte, plain, (off_t)in->body_off, *judged, sig,
		    format);
		c.verified = *verified && rs->is_signed;
	}
	exact.delimiters[0] = '\0';
	return restore_identity(rs, m, &v, err);
}

/*
 * Which recipients the encryption names: target[i] is set when the handler
 * says the message is encrypted to one of recipient i's keys (recipients
 * with the same address share the answer); why gets the reason for the
 * first recipient that is not a target.
 */
static cables_status
find_targets(const struct message *m, const struct milter_env *env, const struct body_handler *h,
    struct handler_msg *hm, bool *target, size_t *ntargets, char *why, size_t why_len, struct cables_err *err)
{
	char reason[CABLES_ERR_MAX];
	cables_status st = CABLES_OK;

	*ntargets = 0;
	why[0] = '\0';
	for (size_t i = 0; i < m->nrcpts && st == CABLES_OK; i++) {
		const struct rcpt *r = &m->rcpts[i];
		size_t dup = i;

		for (size_t k = 0; k < i && dup == i; k++)
			if (r->norm != NULL && m->rcpts[k].norm != NULL && strcmp(m->rcpts[k].norm, r->norm) == 0)
				dup = k;
		reason[0] = '\0';
		if (dup != i)
			target[i] = target[dup];
		else if (r->norm == NULL)
			snprintf(reason, sizeof(reason), "recipient %s has no key", r->addr);
		else
			st = h->names(hm, env, r->norm, &target[i], reason, sizeof(reason), err);
		if (!target[i] && why[0] == '\0')
			strlcpy_c(why, reason, why_len);
		if (target[i])
			(*ntargets)++;
	}
	return st;
}

/* On-DecryptError combined over the recipients for whom the message stays encrypted (all when mask is NULL). */
static enum fail_action
decrypt_action(const struct message *m, const struct config *cfg, const bool *target)
{
	enum fail_action a = ACTION_ACCEPT;

	for (size_t i = 0; i < m->nrcpts; i++)
		if (target == NULL || !target[i])
			a = fail_action_combine(a,
			    (enum fail_action)policy_get(&cfg->policy, m->rcpts[i].norm, PA_ON_DECRYPT_ERROR, NULL));
	if (m->nrcpts == 0)
		a = (enum fail_action)cfg->policy.dflt[PA_ON_DECRYPT_ERROR];
	return a;
}

/*
 * The message stays encrypted (or unchecked) for its recipients: On-DecryptError
 * says whether it is delivered with the reason in X-Cables, held, or refused.
 */
static void
not_decrypted(const struct message *m, const struct mta *mta, struct report *r, enum fail_action action,
    const char *format, const char *state, const char *why, struct outcome *out)
{
	char *text;

	if (action == ACTION_TEMPFAIL || action == ACTION_REJECT) {
		outcome_set(out, action == ACTION_TEMPFAIL ? VERDICT_TEMPFAIL : VERDICT_REJECT,
		    fail_action_name(action), "%s (On-DecryptError): %s", state, why);
		if (action == ACTION_TEMPFAIL)
			outcome_reply(out, "451", "4.7.5", "Cables: the message cannot be decrypted here, try again later");
		else
			outcome_reply(out, "554", "5.7.5", "Cables: the message cannot be decrypted here");
		return;
	}
	text = xasprintf("%s; format=%s; reason=\"", state, format);
	report_add(r, text, why, "\"");
	free(text);
	if (add_report(m, mta, r) != 0) {
		outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused a header change");
		return;
	}
	if (action == ACTION_QUARANTINE) {
		text = xasprintf("Cables: %s: %s", state, why);
		if (mta->quarantine(mta->ctx, text) != 0)
			outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused to quarantine");
		else {
			outcome_set(out, VERDICT_MODIFIED, "quarantine", "%s: %s", state, why);
			outcome_classify(out, CLASS_HELD, format);
		}
		free(text);
		return;
	}
	outcome_set(out, VERDICT_MODIFIED, state, "%s", why);
	outcome_classify(out, CLASS_NOT_DECRYPTED, format);
}

/*
 * Split delivery, inbound: the recipients the sender did not encrypt to get
 * the message as it came, with the reason in X-Cables, re-injected; they
 * leave the transaction, which the caller has already decrypted in place.
 */
static void
split_non_targets(const struct message *m, const struct milter_env *env, const struct mta *mta,
    const bool *target, const char *format, const char *why, struct outcome *out)
{
	char *text;
	size_t *members = xcalloc(m->nrcpts + 1, sizeof(*members)), n = 0, len;
	struct entity_src body;
	struct report r;
	struct buf first, desc;
	struct cables_err err;
	char qid[64];

	for (size_t i = 0; i < m->nrcpts; i++)
		if (!target[i])
			members[n++] = i;
	report_init(&r);
	buf_init(&first);
	buf_init(&desc);
	text = xasprintf("not-decrypted; format=%s; reason=\"", format);
	report_add(&r, text, why, "\"");
	free(text);
	buf_printf(&first, "X-Cables: %s\r\n", r.field.data);
	entity_src_init(&body);
	entity_src_spool(&body, m->body, 0, -1);
	if (copy_send(m, env, members, n, NULL, &first, NULL, &body, qid, sizeof(qid), &err) != CABLES_OK) {
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery: %s", err.msg);
		outcome_reply(out, "451", "4.3.0", "Cables: cannot queue a copy for some recipients, try again later");
	} else if (copy_remove(m, mta, members, n) != 0) {
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery: the MTA refused to remove a recipient "
		    "(a copy was queued as %s)", qid[0] != '\0' ? qid : "(unknown)");
		outcome_reply(out, "451", "4.3.0", "Cables: split delivery failed, try again later");
	} else {
		copy_describe(m, "not decrypted", members, n, qid, &desc);
		len = strlen(out->detail);
		snprintf(out->detail + len, sizeof(out->detail) - len, "; split: copy %s (%s)", desc.data, why);
	}
	report_release(&r);
	buf_release(&first);
	buf_release(&desc);
	free(members);
}

/* Does the spool hold a byte with bit 7 set? */
static bool
has_8bit(const struct spool *sp)
{
	char chunk[8192];
	size_t got;

	for (off_t off = 0; spool_pread(sp, off, chunk, sizeof(chunk), &got, NULL) == CABLES_OK && got > 0;
	    off += (off_t)got)
		for (size_t i = 0; i < got; i++)
			if ((unsigned char)chunk[i] >= 0x80)
				return true;
	return false;
}

/* The plaintext replaces the body of the same entity (inline PGP); 8-bit text is labelled so. */
static int
replace_body(const struct message *m, const struct mta *mta, const struct spool *plain)
{
	const char *cte = message_header_value(m, "Content-Transfer-Encoding");
	char *v8;
	int rc = mta_replace_body(mta, plain, 0, (off_t)spool_size(plain));

	while (cte != NULL && (*cte == ' ' || *cte == '\t'))
		cte++;
	if (rc != 0 || !has_8bit(plain) || (cte != NULL && str_nieq(cte, "8bit", 4)))
		return rc;
	v8 = mta_value(mta, " 8bit");
	rc = cte != NULL ? mta->chgheader(mta->ctx, "Content-Transfer-Encoding", 1, v8) :
	    mta->addheader(mta->ctx, "Content-Transfer-Encoding", v8);
	free(v8);
	return rc;
}

/* The report as fields to put first in a copy: Authentication-Results, then X-Cables (as add_report leaves them). */
static void
report_fields(const struct message *m, const struct report *r, struct buf *first)
{
	if (r->ar.len > 0) {
		buf_appends(first, "Authentication-Results: ");
		authres_value(first, m->authserv_id);
		buf_append(first, r->ar.data, r->ar.len);
		buf_appends(first, "\r\n");
	}
	if (r->field.len > 0)
		buf_printf(first, "X-Cables: %s\r\n", r->field.data);
}

/*
 * The content of a decrypted copy: the plaintext entity's content fields
 * (after MIME-Version) and body; or, for inline PGP, the plaintext as the
 * body, labelled 8bit when it is.  Protected header fields are not applied.
 */
static cables_status
copy_content(const struct message *m, const struct body_handler *h, struct handler_msg *hm,
    const struct milter_env *env, const char *addr, const struct spool *plain, struct buf *content,
    struct entity_src *body, struct spool **headers, struct report *r, struct cables_err *err)
{
	struct inner in;
	struct restore rs;
	struct handler_sig sig;
	const char *sig_format = h->name, *ct = message_header_value(m, "Content-Type"), *judged;
	bool verified;
	cables_status st;

	memset(&sig, 0, sizeof(sig));
	memset(&rs, 0, sizeof(rs));
	memset(&in, 0, sizeof(in));
	entity_src_init(body);
	if (!h->plain_is_entity(hm)) {
		verified = h->signature(hm, env, m->from, &sig);
		if (has_8bit(plain))
			buf_printf(content, "MIME-Version: 1.0\r\nContent-Type:%s\r\nContent-Transfer-Encoding: 8bit\r\n",
			    ct != NULL ? ct : " text/plain; charset=us-ascii");
		entity_src_spool(body, plain, 0, -1);
	} else {
		if ((st = restore_plan(&rs, m, plain, err)) != CABLES_OK ||
		    (st = read_inner(plain, rs.from, &in, err)) != CABLES_OK) {
			inner_release(&in);
			restore_release(&rs);
			return st;
		}
		st = check_entity(&rs, m, env, h, hm, plain, &in, &sig, &sig_format, &judged, &verified, err);
		inner_release(&in);
		if (st != CABLES_OK ||
		    (st = restore_copy(&rs, m, plain, env->cfg->temp_dir, content, body, headers, err)) != CABLES_OK) {
			handler_sig_release(&sig);
			restore_release(&rs);
			return st;
		}
	}
	h->report(hm, &r->field, &r->log);
	if (h->plain_is_entity(hm)) {
		report_identity(r, &rs);
		if (!restore_names(&rs, addr, &env->cfg->addr)) {
			/* The copy is addr's alone (decrypted_copy): naming it tells no one else anything. */
			buf_printf(&r->log, " addressed=elsewhere (not in the protected To or Cc: %s)", addr);
			buf_appends(&r->field, "; protected-to=others");
		}
		restore_note(&rs, &r->log);
	}
	if (verified)
		report_signature(r, &sig, h->plain_is_entity(hm) ? shown_from(&rs, m) : m->from, sig_format, env);
	if (h->plain_is_entity(hm))
		restore_release(&rs);
	handler_sig_release(&sig);
	return CABLES_OK;
}

/*
 * A copy for members[0..n) (all of address addr), decrypted with addr's
 * key alone and re-injected; or, when it cannot be decrypted, the message
 * as it came with the reason.  An error: nothing could be queued.
 */
static cables_status
decrypted_copy(const struct message *m, const struct milter_env *env, const struct body_handler *h,
    const char *addr, const size_t *members, size_t n, struct buf *desc, struct cables_err *err)
{
	struct handler_msg *hm = NULL;
	struct spool *plain = NULL, *headers = NULL;
	struct report r;
	struct buf first, content;
	struct entity_src body;
	struct cables_err why;
	char qid[64], reason[CABLES_ERR_MAX], *text;
	bool named = false;
	cables_status st;

	report_init(&r);
	buf_init(&first);
	buf_init(&content);
	why.msg[0] = '\0';
	if ((st = h->open(m, env, &hm, err)) == CABLES_OK &&
	    (st = h->names(hm, env, addr, &named, reason, sizeof(reason), err)) == CABLES_OK && !named)
		st = cables_fail(err, CABLES_ERR_INTERNAL, "%s", reason);
	if (st == CABLES_OK && ((st = h->decrypt(hm, env, &plain, &why)) != CABLES_OK ||
	    (st = copy_content(m, h, hm, env, addr, plain, &content, &body, &headers, &r, &why)) != CABLES_OK)) {
		if (st == CABLES_ERR_IO) {
			*err = why;
			goto out;
		}
		/* Not decryptable for addr: the message as it came, with the reason. */
		buf_reset(&content);
		buf_reset(&r.field);
		buf_reset(&r.ar);
		spool_free(headers);
		headers = NULL;
		text = xasprintf("not-decrypted; format=%s; reason=\"", h->name);
		report_add(&r, text, why.msg, "\"");
		free(text);
		entity_src_init(&body);
		entity_src_spool(&body, m->body, 0, -1);
		st = CABLES_OK;
	}
	if (st != CABLES_OK)
		goto out;
	report_fields(m, &r, &first);
	if ((st = copy_send(m, env, members, n, headers, &first, content.len > 0 ? &content : NULL, &body, qid,
	    sizeof(qid), err)) == CABLES_OK)
		copy_describe(m, why.msg[0] == '\0' ? "decrypted with its own key" : "not decrypted", members, n, qid,
		    desc);
out:
	h->close(hm);
	spool_free(headers);
	spool_free(plain);
	report_release(&r);
	buf_release(&first);
	buf_release(&content);
	return st;
}

/*
 * The targets do not share a key (h->one_copy): every target address but
 * the first gets its own copy (decrypted_copy), own[] marks its
 * recipients, and *hm is opened again for the first address alone, which
 * the caller decrypts in place.  An error: temp-fail the transaction.
 */
static cables_status
split_by_key(const struct message *m, const struct milter_env *env, const struct body_handler *h,
    struct handler_msg **hm, const bool *target, bool *own, struct buf *desc, struct cables_err *err)
{
	size_t *members = xcalloc(m->nrcpts + 1, sizeof(*members)), n, first = m->nrcpts;
	char reason[CABLES_ERR_MAX];
	bool named = false;
	cables_status st = CABLES_OK;

	for (size_t i = 0; i < m->nrcpts && st == CABLES_OK; i++) {
		if (!target[i] || own[i] || m->rcpts[i].norm == NULL)
			continue;
		if (first == m->nrcpts || strcmp(m->rcpts[i].norm, m->rcpts[first].norm) == 0) {
			first = first == m->nrcpts ? i : first;
			continue;
		}
		n = 0;
		for (size_t k = i; k < m->nrcpts; k++)
			if (target[k] && m->rcpts[k].norm != NULL && strcmp(m->rcpts[k].norm, m->rcpts[i].norm) == 0)
				members[n++] = k;
		st = decrypted_copy(m, env, h, m->rcpts[i].norm, members, n, desc, err);
		for (size_t k = 0; k < n && st == CABLES_OK; k++)
			own[members[k]] = true;
	}
	free(members);
	if (st != CABLES_OK)
		return st;
	if (first == m->nrcpts)
		return cables_fail(err, CABLES_ERR_INTERNAL, "split by key without a target");
	h->close(*hm);
	*hm = NULL;
	if ((st = h->open(m, env, hm, err)) == CABLES_OK &&
	    (st = h->names(*hm, env, m->rcpts[first].norm, &named, reason, sizeof(reason), err)) == CABLES_OK && !named)
		st = cables_fail(err, CABLES_ERR_INTERNAL, "%s", reason);
	return st;
}

/* Remove the recipients that got their own copy (split_by_key) from the transaction. */
static void
remove_own(const struct message *m, const struct mta *mta, const bool *own, const struct buf *desc,
    struct outcome *out)
{
	size_t *members = xcalloc(m->nrcpts + 1, sizeof(*members)), n = 0, len;

	for (size_t i = 0; i < m->nrcpts; i++)
		if (own[i])
			members[n++] = i;
	if (n > 0 && (out->verdict == VERDICT_MODIFIED || out->verdict == VERDICT_ACCEPT)) {
		if (copy_remove(m, mta, members, n) != 0) {
			outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery: the MTA refused to remove a "
			    "recipient (copies were queued: %s)", desc->data);
			outcome_reply(out, "451", "4.3.0", "Cables: split delivery failed, try again later");
		} else {
			len = strlen(out->detail);
			snprintf(out->detail + len, sizeof(out->detail) - len, "; split by key: copy %s", desc->data);
		}
	}
	free(members);
}

/*
 * The targets have different keys: each target address gets its own copy,
 * decrypted with its own key alone (split_by_key).  CABLES_ERR_UNUSABLE
 * with why: no split delivery, it stays encrypted; another error: out says
 * what to do.
 */
static cables_status
by_key(const struct message *m, const struct milter_env *env, const struct body_handler *h,
    struct handler_msg **hm, const bool *target, bool *own, struct buf *copies, char *why, size_t why_len,
    struct outcome *out)
{
	struct cables_err err;
	cables_status st;

	if (env->reinject_key == NULL) {
		strlcpy_c(why, "the recipients have different keys (no ReinjectTo for split delivery)", why_len);
		return CABLES_ERR_UNUSABLE;
	}
	if ((st = split_by_key(m, env, h, hm, target, own, copies, &err)) != CABLES_OK) {
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery by key: %s", err.msg);
		outcome_reply(out, "451", "4.3.0", "Cables: cannot queue a copy for some recipients, try again later");
		return st == CABLES_ERR_UNUSABLE ? CABLES_ERR_INTERNAL : st;
	}
	return CABLES_OK;
}

/*
 * Decrypt through handler h, which claimed the message (open gave st and
 * hm); on success the message is rewritten.
 */
static void
decrypt(struct message *m, const struct milter_env *env, const struct mta *mta, const struct body_handler *h,
    struct handler_msg **hmp, cables_status st, struct cables_err *open_err, struct report *r, struct outcome *out)
{
	struct handler_msg *hm = *hmp;
	bool *own = xcalloc(m->nrcpts + 1, sizeof(*own));
	struct buf copies;
	struct spool *plain = NULL;
	struct inner in;
	struct restore rs;
	struct handler_sig sig;
	struct cables_err err;
	char why[CABLES_ERR_MAX], non_target_why[CABLES_ERR_MAX];
	const char *sig_format, *judged = m->from;
	enum fail_action action;
	bool verified = false, *target = xcalloc(m->nrcpts + 1, sizeof(*target)), splitting = false;
	size_t ntargets;

	memset(&in, 0, sizeof(in));
	memset(&rs, 0, sizeof(rs));
	memset(&sig, 0, sizeof(sig));
	buf_init(&copies);
	action = decrypt_action(m, env->cfg, NULL);
	if (st == CABLES_ERR_IO || st == CABLES_ERR_INTERNAL) {
		outcome_internal_error(out, m->on_internal_error, true, false, open_err->msg);
		goto out;
	}
	if (st != CABLES_OK) {
		strlcpy_c(why, open_err->msg, sizeof(why));
		goto not_decrypted;
	}
	st = find_targets(m, env, h, hm, target, &ntargets, why, sizeof(why), &err);
	if (st != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, false, err.msg);
		goto out;
	}
	if (ntargets == 0)
		goto not_decrypted;
	if (ntargets < m->nrcpts) {
		/* Plaintext only for the recipients the sender encrypted to. */
		action = decrypt_action(m, env->cfg, target);
		if (env->reinject_key == NULL) {
			/* Without split delivery it stays encrypted for every recipient, targets too. */
			action = decrypt_action(m, env->cfg, NULL);
			snprintf(why + strlen(why), sizeof(why) - strlen(why), " (no ReinjectTo for split delivery)");
			goto not_decrypted;
		}
		if (action != ACTION_ACCEPT)
			goto not_decrypted;	/* the strictest wins: the whole message is held or refused */
		splitting = true;
		strlcpy_c(non_target_why, why, sizeof(non_target_why));
		action = decrypt_action(m, env->cfg, NULL);
	}
	if (ntargets > 1 && h->one_copy != NULL && !h->one_copy(hm)) {
		if ((st = by_key(m, env, h, hmp, target, own, &copies, why, sizeof(why), out)) != CABLES_OK) {
			action = decrypt_action(m, env->cfg, NULL);
			if (st == CABLES_ERR_UNUSABLE)
				goto not_decrypted;
			goto out;
		}
		hm = *hmp;
	}
	if ((st = h->decrypt(hm, env, &plain, &err)) != CABLES_OK) {
		if (st == CABLES_ERR_IO) {
			outcome_internal_error(out, m->on_internal_error, true, false, err.msg);
			goto out;
		}
		strlcpy_c(why, err.msg, sizeof(why));
		goto not_decrypted;
	}
	if (h->plain_is_entity(hm)) {
		if ((st = restore_plan(&rs, m, plain, &err)) != CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, true, false, err.msg);
			goto out;
		}
		if ((st = read_inner(plain, rs.from, &in, &err)) != CABLES_OK) {
			strlcpy_c(why, err.msg, sizeof(why));
			goto not_decrypted;
		}
		if ((st = check_entity(&rs, m, env, h, hm, plain, &in, &sig, &sig_format, &judged, &verified, &err)) !=
		    CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, true, false, err.msg);
			goto out;
		}
		if (restore_apply(&rs, m, mta, plain) != 0) {
			outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused a change");
			goto out;
		}
	} else {
		sig_format = h->name;
		verified = h->signature(hm, env, m->from, &sig);
		if (replace_body(m, mta, plain) != 0) {
			outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused a change");
			goto out;
		}
	}
	h->report(hm, &r->field, &r->log);
	report_identity(r, &rs);
	if (h->plain_is_entity(hm))
		report_addressed(r, &rs, m, env, target, own);
	restore_note(&rs, &r->log);
	if (verified) {
		/* The verdict is about the From the reader sees; the certificate kept is for the From signed. */
		report_signature(r, &sig, shown_from(&rs, m), sig_format, env);
		harvest(env, &sig, judged, r);
	}
	if (add_report(m, mta, r) != 0) {
		outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused a header change");
		goto out;
	}
	outcome_set(out, VERDICT_MODIFIED, "decrypted", "%s", r->log.data);
	outcome_classify(out, CLASS_DECRYPTED, h->name);
	if (splitting)
		split_non_targets(m, env, mta, target, h->name, non_target_why, out);
	remove_own(m, mta, own, &copies, out);
	goto out;
not_decrypted:
	not_decrypted(m, mta, r, action, h->name, "not-decrypted", why, out);
	remove_own(m, mta, own, &copies, out);
out:
	handler_sig_release(&sig);
	inner_release(&in);
	restore_release(&rs);
	spool_free(plain);
	free(target);
	free(own);
	buf_release(&copies);
}

void
inbound_finish(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out)
{
	const char *ct = message_header_value(m, "Content-Type");
	const struct body_handler *h = NULL;
	const char *format;
	struct report r;
	struct handler_sig sig;
	struct cables_err err;

	report_init(&r);
	if (m->body_status != CABLES_OK && m->body_status != CABLES_ERR_TOOBIG) {
		outcome_internal_error(out, m->on_internal_error, true, false, m->body_err.msg);
		goto out;
	}
	/* Too big to have been read whole: encrypted or signed (by its label) stays so, with the reason. */
	if (m->body_status == CABLES_ERR_TOOBIG && ((h = may_claim(m, env, CLAIM_SURE)) != NULL ||
	    signed_by(ct) != NULL)) {
		not_decrypted(m, mta, &r, h != NULL ? decrypt_action(m, env->cfg, NULL) : ACTION_ACCEPT,
		    h != NULL ? h->name : signed_by(ct)->name, "not-checked", m->body_err.msg, out);
		goto out;
	}
	for (size_t i = 0; i < NHANDLERS; i++) {
		struct handler_msg *hm = NULL;
		cables_status st;

		h = handlers[i];
		if ((st = h->open(m, env, &hm, &err)) == CABLES_ERR_NOTFOUND)
			continue;
		decrypt(m, env, mta, h, &hm, st, &err, &r, out);
		h->close(hm);
		goto out;
	}
	memset(&sig, 0, sizeof(sig));
	if (verify_content(env, ct, message_header_value(m, "Content-Transfer-Encoding"), m->body, 0, m->from, &sig,
	    &format)) {
		report_signature(&r, &sig, m->from, format, env);
		harvest(env, &sig, m->from, &r);
		handler_sig_release(&sig);
		if (add_report(m, mta, &r) != 0)
			outcome_internal_error(out, m->on_internal_error, false, false, "the MTA refused a header change");
		else {
			outcome_set(out, VERDICT_MODIFIED, "verified", "format=%s%s", format, r.log.data);
			outcome_classify(out, CLASS_VERIFIED, format);
		}
		goto out;
	}
	outcome_set(out, VERDICT_ACCEPT, "pass", "inbound, not encrypted or signed");
out:
	report_release(&r);
}
