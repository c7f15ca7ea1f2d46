/* hold - On-KeyNotFound hold in the milter; see hold.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "addr.h"
#include "heldseal.h"
#include "hold.h"
#include "khclient.h"
#include "notice.h"
#include "reinject.h"
#include "util.h"

/* Seconds before the next look for a record held again: the longer it waited, the longer (at most an hour). */
static long long
backoff(int tries)
{
	long long s = 30;

	for (int i = 0; i < tries && s < 3600; i++)
		s *= 2;
	return s < 3600 ? s : 3600;
}

cables_status
hold_message_key(void *arg, const char *id, const uint8_t *salt, uint8_t *key, struct cables_err *err)
{
	const struct hold_keysrc *src = arg;
	struct kh_request req;
	struct kh_reply rep;
	cables_status st;

	if (src->keyholder == NULL) {
		if (src->seal_key == NULL)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "no cables-keyholder (KeyholderSocket) to seal held "
			    "messages with");
		held_key_derive(src->seal_key, id, salt, key);
		return CABLES_OK;
	}
	memset(&req, 0, sizeof(req));
	req.op = KH_OP_HELD_KEY;
	req.key = KH_KEY_SMIME;
	memset(req.fingerprint, '0', KH_FPR_LEN);
	strlcpy_c(req.address, "@held", sizeof(req.address));
	memcpy(req.data, id, KEYSTORE_HELD_ID_LEN);
	memcpy(req.data + KEYSTORE_HELD_ID_LEN, salt, HELD_SALT_LEN);
	req.len = HELD_KEY_REQUEST_LEN;
	st = src->keyholder->call(src->keyholder->arg, &req, &rep, err);
	if (st == CABLES_OK && (rep.status != KH_OK || rep.len != HELD_KEY_LEN))
		st = cables_fail(err, rep.status == KH_UNAVAILABLE ? CABLES_ERR_IO : CABLES_ERR_CRYPTO,
		    "cables-keyholder gave no held-message key: %s", kh_status_name(rep.status));
	if (st == CABLES_OK)
		memcpy(key, rep.data, HELD_KEY_LEN);
	OPENSSL_cleanse(&rep, sizeof(rep));
	return st;
}

/*
 * The record a resubmitted copy's X-Cables-Release field names, when its
 * token is the record's: the one only the milter can make from the sealed
 * message's key (held_release_token), so that keyd, which reads and writes
 * the row, cannot pass a message of its own off as a release.
 */
static bool
release_record(const struct message *m, const struct milter_env *env, struct held_record *h)
{
	char id[KEYSTORE_HELD_ID_LEN + 1], token[KEYSTORE_HELD_TOKEN_LEN + 1], want[KEYSTORE_HELD_TOKEN_LEN + 1];
	const char *v = m->release;
	size_t max = env->cfg->max_message_size != 0 ? env->cfg->max_message_size + 4096 : 0;
	long long when;
	bool ok;

	if (v == NULL || m->outer[OUTER_RELEASE] != 1)
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	if (sscanf(v, "%16[0-9a-f] %11lld %32[0-9a-f]", id, &when, token) != 3 ||
	    strlen(id) != KEYSTORE_HELD_ID_LEN || strlen(token) != KEYSTORE_HELD_TOKEN_LEN)
		return false;
	/* Made at release, good for a while: a token that leaked does not stay a key to signing. */
	if (when > (long long)env->now + 300 || when < (long long)env->now - HELD_RELEASE_VALID)
		return false;
	/* The message is read only to find its salt, and only when no larger than a message we take. */
	if (keystore_held_get_bounded(env->ks, id, max, h, NULL) != CABLES_OK)
		return false;
	/* A row in the clear (held before schema 5) is what keyd could have written: never a release. */
	ok = h->sealed && h->message != NULL && strcmp(h->sender, m->sender) == 0 &&
	    held_release_token(hold_message_key, &(struct hold_keysrc){ env->keyholder, env->seal_key }, h, when,
	    want, NULL) == CABLES_OK && CRYPTO_memcmp(want, token, KEYSTORE_HELD_TOKEN_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	if (!ok) {
		held_record_release(h);
		return false;
	}
	return true;
}

void
hold_release_check(struct message *m, const struct milter_env *env)
{
	struct held_record h;

	if (m->release_checked)
		return;
	m->release_checked = true;
	if (!release_record(m, env, &h))
		return;
	m->release_valid = true;
	strlcpy_c(m->release_id, h.id, sizeof(m->release_id));
	/* The original submission's login: the copy comes through pickup without one. */
	if (m->auth_login == NULL && h.auth_login != NULL && held_login_ok(h.auth_login)) {
		m->auth_login = xstrdup(h.auth_login);
		m->auth_from_release = true;
	}
	held_record_release(&h);
}

/* The message as it arrived: header fields but ours, the empty line, the body. */
static cables_status
stored_message(const struct message *m, struct buf *out, struct cables_err *err)
{
	struct spool_lines *lines = xmalloc(sizeof(*lines));
	const char *line;
	size_t n;
	off_t off;
	bool at_start, whole, skip = false;
	cables_status st;

	spool_lines_init(lines, m->headers, 0, -1);
	for (;;) {
		if ((st = spool_lines_next(lines, &line, &n, &off, &at_start, &whole, err)) != CABLES_OK || n == 0)
			break;
		if (at_start && line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', n);
			size_t name = colon != NULL ? (size_t)(colon - line) : n;

			skip = (name == 8 && str_nieq(line, "X-Cables", 8)) ||
			    (name == strlen(REINJECT_MARKER) && str_nieq(line, REINJECT_MARKER, name)) ||
			    (name == strlen(HOLD_RELEASE_FIELD) && str_nieq(line, HOLD_RELEASE_FIELD, name));
		}
		if (!skip)
			buf_append(out, line, n);
	}
	free(lines);
	if (st != CABLES_OK)
		return st;
	buf_append(out, "\r\n", 2);
	return spool_read_buf(m->body, 0, spool_size(m->body), out, err);
}

/* "ADDRESS<TAB>why" lines for the remote require recipients without a key; how many. */
static size_t
waiting_list(const struct message *m, struct buf *out)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy != POLICY_REQUIRE || r->key != NULL)
			continue;
		buf_printf(out, "%s\tno usable %s: ", r->norm != NULL ? r->norm : r->addr, r->why_what);
		for (const char *p = r->why_no_key != NULL ? r->why_no_key : "no key"; *p != '\0'; p++)
			if ((unsigned char)*p >= ' ' && *p != 0x7f)
				buf_append(out, p, 1);
		buf_appends(out, "\n");
		n++;
	}
	return n;
}

/*
 * The quarantined copy says where the message is, and nothing of it: an
 * administrator's postsuper -H delivers it to HoldAddress (often aliased
 * off-site), and the record holds the real message.
 */
static int
make_stub(const struct message *m, const struct mta *mta, const char *id)
{
	char *body = xasprintf("This message is held by Cables until its recipients' encryption keys are found,\r\n"
	    "as %s.  Its content is not in this copy: cables-keyctl held show %s\r\n", id, id);
	char *subject = mta_value(mta, " Message held by Cables for encryption keys");
	char *type = mta_value(mta, " text/plain; charset=us-ascii"), *cte = mta_value(mta, " 7bit");
	int rc = mta->replacebody(mta->ctx, body, strlen(body));

	for (unsigned int i = m->outer[OUTER_SUBJECT]; i > 1 && rc == 0; i--)
		rc = mta->chgheader(mta->ctx, "Subject", (int)i, NULL);
	if (rc == 0)
		rc = m->outer[OUTER_SUBJECT] > 0 ? mta->chgheader(mta->ctx, "Subject", 1, subject) :
		    mta->addheader(mta->ctx, "Subject", subject);
	/* The stub is plain text, whatever the message was. */
	if (rc == 0)
		rc = mta->chgheader(mta->ctx, "Content-Type", 1, type);
	if (rc == 0)
		rc = mta->chgheader(mta->ctx, "Content-Transfer-Encoding", 1, cte);
	free(cte);
	free(type);
	free(subject);
	free(body);
	return rc;
}

/* The content replaced by a stub, every recipient out, HoldAddress in, into the hold queue. */
static int
make_harmless(const struct message *m, const struct milter_env *env, const struct mta *mta, const char *id)
{
	char *hold = xasprintf("<%s>", env->cfg->hold_address), *reason;
	int rc = make_stub(m, mta, id);

	for (size_t i = 0; i < m->nrcpts && rc == 0; i++)
		rc = mta->delrcpt(mta->ctx, m->rcpts[i].arg);
	if (rc == 0)
		rc = mta->addrcpt(mta->ctx, hold);
	reason = xasprintf("Cables: held for encryption keys (cables-keyctl held show %s)", id);
	if (rc == 0)
		rc = mta->quarantine(mta->ctx, reason);
	free(reason);
	free(hold);
	return rc;
}

static void
cannot_hold(struct message *m, struct outcome *out, const char *why)
{
	char text[300];

	snprintf(text, sizeof(text), "Cables: cannot encrypt as policy requires: %s", m->blocked_reason);
	outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "not held (%s): %s (policy require)", why, m->blocked_reason);
	outcome_reply(out, "451", "4.7.1", text);
}

/*
 * Resubmitted, and a key is missing again: the same record waits on,
 * without a second notice.  A plain update, whatever keyd wrote: it ends
 * keyd's claim, so keyd's own "released" (compare-and-set on that claim)
 * can no longer overwrite it; tries counts the release that came back.
 */
static bool
rehold(const struct message *m, const struct milter_env *env, struct held_record *h, const char *waiting,
    struct cables_err *err)
{
	free(h->waiting);
	h->waiting = xstrdup(waiting);
	strlcpy_c(h->queue_id, m->queue_id != NULL ? m->queue_id : "", sizeof(h->queue_id));
	strlcpy_c(h->state, "held", sizeof(h->state));
	h->action[0] = '\0';	/* keyd looks for the keys again */
	h->tries++;
	h->next_try = (long long)env->now + backoff(h->tries);
	return keystore_held_update(env->ks, h, err) == CABLES_OK;
}

/*
 * Would holding len more bytes from m's sender go over HoldMax*?  *over
 * names the limit, or is NULL.  The store is bounded: a sender (or a flood)
 * that holds without end gets 4xx, as before hold, not a full disk.
 */
static cables_status
over_limit(const struct message *m, const struct milter_env *env, size_t len, const char **over,
    struct cables_err *err)
{
	const struct config *cfg = env->cfg;
	struct held_usage u;
	cables_status st;

	*over = NULL;
	if ((st = keystore_held_usage(env->ks, m->sender, &u, err)) != CABLES_OK)
		return st;
	if (cfg->hold_max_messages != 0 && (unsigned long long)u.messages + 1 > cfg->hold_max_messages)
		*over = "HoldMaxMessages messages are held";
	else if (cfg->hold_max_bytes != 0 && (unsigned long long)u.bytes + len > cfg->hold_max_bytes)
		*over = "the held messages would take more than HoldMaxBytes";
	else if (cfg->hold_max_sender_messages != 0 &&
	    (unsigned long long)u.sender_messages + 1 > cfg->hold_max_sender_messages)
		*over = "HoldMaxMessagesPerSender messages of this sender are held";
	else if (cfg->hold_max_sender_bytes != 0 &&
	    (unsigned long long)u.sender_bytes + len > cfg->hold_max_sender_bytes)
		*over = "this sender's held messages would take more than HoldMaxBytesPerSender";
	return CABLES_OK;
}

void
hold_message(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out)
{
	const struct config *cfg = env->cfg;
	struct held_record h;
	struct buf waiting, rcpts, content;
	struct cables_err err;
	uint8_t rnd[KEYSTORE_HELD_ID_LEN / 2 + KEYSTORE_HELD_TOKEN_LEN / 2];
	bool again;
	char *norm;
	const char *over;
	cables_status st;

	if (mta->addrcpt == NULL || env->ks == NULL || cfg->hold_address == NULL) {
		cannot_hold(m, out, mta->addrcpt == NULL ? "the MTA does not let the milter change recipients or "
		    "quarantine" : "HoldAddress is none");
		return;
	}
	if (m->sender[0] == '\0') {
		/* A bounce cannot be returned when its time is up: it waits in the MTA's queue instead. */
		cannot_hold(m, out, "the null sender could not be told or given the message back");
		return;
	}
	if (!notice_address_ok(m->sender)) {
		cannot_hold(m, out, "the sender could not be given to MailCommand");
		return;
	}
	for (size_t i = 0; i < m->nrcpts; i++)
		if (!notice_address_ok(m->rcpts[i].addr)) {
			/* Accepted now, it could never be resubmitted nor returned. */
			cannot_hold(m, out, "a recipient could not be given to MailCommand");
			return;
		}
	buf_init(&waiting);
	buf_init(&rcpts);
	buf_init(&content);
	waiting_list(m, &waiting);
	hold_release_check(m, env);
	again = m->release_valid && keystore_held_get(env->ks, m->release_id, false, &h, NULL) == CABLES_OK;
	if (again && !rehold(m, env, &h, waiting.data != NULL ? waiting.data : "", &err)) {
		outcome_internal_error(out, m->on_internal_error, false, true, err.msg);
		goto out;
	} else if (!again) {
		memset(&h, 0, sizeof(h));
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			outcome_internal_error(out, m->on_internal_error, false, true, "no random bytes for a hold ID");
			goto out;
		}
		hex_encode(rnd, KEYSTORE_HELD_ID_LEN / 2, h.id);
		hex_encode(rnd + KEYSTORE_HELD_ID_LEN / 2, KEYSTORE_HELD_TOKEN_LEN / 2, h.token);
		OPENSSL_cleanse(rnd, sizeof(rnd));
		strlcpy_c(h.queue_id, m->queue_id != NULL ? m->queue_id : "", sizeof(h.queue_id));
		for (size_t i = 0; i < m->nrcpts; i++)
			buf_printf(&rcpts, "%s\n", m->rcpts[i].addr);
		if (stored_message(m, &content, &err) != CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, false, true, err.msg);
			goto out;
		}
		if ((st = over_limit(m, env, content.len, &over, &err)) != CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, false, true, err.msg);
			goto out;
		}
		if (over != NULL) {
			cannot_hold(m, out, over);
			goto out;
		}
		h.sender = xstrdup(m->sender);
		h.recipients = xstrdup(rcpts.data);
		/* Kept (and sealed with the message) so that the released copy is signed as this one would be. */
		h.auth_login = xstrdup(m->auth_login != NULL && held_login_ok(m->auth_login) ? m->auth_login : "");
		h.waiting = xstrdup(waiting.data != NULL ? waiting.data : "");
		/* Sealed for the milter alone (heldseal.h): keyd, which faces the network, cannot read it. */
		if (held_seal(hold_message_key, &(struct hold_keysrc){ env->keyholder, env->seal_key }, &h,
		    (const uint8_t *)content.data, content.len, &h.message, &h.message_len, &err) != CABLES_OK) {
			cannot_hold(m, out, err.msg);
			goto out;
		}
		h.sealed = 1;
		norm = addr_normalize(m->sender, &cfg->addr);
		/* Only a sender of ours is told: never a remote address a trusted client put in MAIL FROM. */
		h.notify = norm != NULL && domain_list_match(&cfg->local_domains, addr_domain(norm)) &&
		    policy_get(&cfg->policy, norm, PA_HOLD_NOTICE, NULL);
		free(norm);
		strlcpy_c(h.state, "held", sizeof(h.state));
		h.held_at = h.next_try = (long long)env->now;
		if (keystore_held_add(env->ks, &h, &err) != CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, false, true, err.msg);
			goto out;
		}
	}
	if (make_harmless(m, env, mta, h.id) != 0) {
		/* Temp-failed: the MTA drops every change, the client keeps the message; the record goes. */
		if (!again)
			keystore_held_delete(env->ks, h.id, NULL);
		outcome_internal_error(out, m->on_internal_error, false, true,
		    "the MTA refused a recipient change or the quarantine for a hold");
		goto out;
	}
	outcome_set(out, VERDICT_MODIFIED, "held", "%s%s for keys: %s (policy require, On-KeyNotFound hold; "
	    "recipients replaced by %s in the MTA's hold queue)", again ? "held again " : "", h.id, m->blocked_reason,
	    cfg->hold_address);
	outcome_classify(out, CLASS_HELD, NULL);
out:
	held_record_release(&h);
	buf_release(&waiting);
	buf_release(&rcpts);
	if (content.data != NULL)
		OPENSSL_cleanse(content.data, content.len);
	buf_release(&content);
}
