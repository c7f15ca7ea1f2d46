/* outbound - decisions, signatures and encryption for outbound mail; see outbound.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "copies.h"
#include "mime.h"
#include "handler.h"
#include "hold.h"
#include "keydclient.h"
#include "log.h"
#include "outbound.h"
#include "protect.h"
#include "reinject.h"
#include "util.h"

/* Refuse the message as On-KeyNotFound says (a Bcc recipient's privacy: always temp-fail, no policy named). */
static void
refuse_no_key(struct outcome *out, enum fail_action action, const char *reason, bool bcc)
{
	char text[300];

	if (bcc) {
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "%s", reason);
		outcome_reply(out, "451", "4.7.1", "Cables: a Bcc recipient's key would be visible to the other "
		    "recipients; split delivery is not configured");
		return;
	}
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
 * whose sender address is local and whose Sign setting is yes, and only
 * when the submitter is entitled to the address (senderlogins.h): the
 * envelope sender alone is what any SASL user or local process can claim.
 */
static cables_status
plan_signature(struct message *m, const struct milter_env *env, struct cables_err *err)
{
	const struct config *cfg = env->cfg;
	char *norm, *why = NULL, why_not[200];
	cables_status st = CABLES_OK;
	bool any = false;

	if (!m->client_trusted || m->sender[0] == '\0')
		return CABLES_OK;
	norm = addr_normalize(m->sender, &cfg->addr);
	if (norm == NULL || !domain_list_match(&cfg->local_domains, addr_domain(norm)) ||
	    !policy_get(&cfg->policy, norm, PA_SIGN, NULL)) {
		free(norm);
		return CABLES_OK;
	}
	if (!sender_entitled(cfg->sender_logins, cfg->sign_unauthenticated, norm, m->auth_login, why_not,
	    sizeof(why_not))) {
		snprintf(m->sign_note, sizeof(m->sign_note), "unsigned: %s", why_not);
		free(norm);
		return CABLES_OK;
	}
	/* The sender's signing key of each format: each copy is signed in its own format. */
	for (size_t i = 0; i < NHANDLERS && st == CABLES_OK; i++) {
		const struct body_handler *h = handlers[i];
		char *w = NULL;

		m->signers[h->format] = h->find_key(env, norm, KEY_SIGN, &w, &st, err);
		any |= m->signers[h->format] != NULL;
		if (why == NULL && w != NULL && (i == 0 || strcmp(w, h->no_key) != 0)) {
			why = w;
			w = NULL;
		}
		free(w);
	}
	if (st == CABLES_OK && !any)
		snprintf(m->sign_note, sizeof(m->sign_note), "unsigned: no signing key for %s: %s", norm,
		    why != NULL ? why : "no private key");
	free(why);
	free(norm);
	return st;
}

/* Has the sender a signing key of some format? */
static bool
any_signer(const struct message *m)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (m->signers[handlers[i]->format] != NULL)
			return true;
	return false;
}

/* The handler that clear-signs with the sender's key (copies that leave unencrypted), or NULL. */
static const struct body_handler *
clear_signer(const struct message *m)
{
	for (size_t i = 0; i < NHANDLERS; i++)
		if (handlers[i]->sign != NULL && m->signers[handlers[i]->format] != NULL)
			return handlers[i];
	return NULL;
}

static void
group_add(struct message *m, bool encrypt, bool bcc, bool epoch, const struct body_handler *h, size_t member)
{
	struct group *g;

	for (size_t i = 0; i < m->ngroups && !bcc; i++) {
		g = &m->groups[i];
		if (g->encrypt == encrypt && !g->bcc && g->epoch == epoch && (!encrypt || g->h == h)) {
			g->members = xreallocarray(g->members, g->n + 1, sizeof(*g->members));
			g->members[g->n++] = member;
			return;
		}
	}
	m->groups = xreallocarray(m->groups, m->ngroups + 1, sizeof(*m->groups));
	g = &m->groups[m->ngroups++];
	g->encrypt = encrypt;
	g->bcc = bcc;
	g->epoch = epoch;
	g->h = h;
	g->members = xmalloc(sizeof(*g->members));
	g->members[0] = member;
	g->n = 1;
}

/* Which group to keep in the transaction: the visible encrypted one, else the as-is one, else a Bcc one. */
static int
keep_rank(const struct group *g)
{
	return g->encrypt ? (g->bcc ? 0 : 2) : 1;
}

/*
 * Recipients into groups (split delivery): as it is (local, policy never,
 * encrypt without a key), encrypted for the visible recipients with keys,
 * and encrypted alone for each Bcc recipient with a key, so that no copy's
 * RecipientInfos reveal a Bcc recipient.  Recipients with epoch keys get a
 * copy of their own: a long-term key beside theirs would open it once
 * stolen, and the forward secrecy would be gone.  The group kept in the transaction
 * goes first: the visible encrypted one, else the as-is one.
 */
static void
make_groups(struct message *m)
{
	struct group tmp;

	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key == NULL)
			group_add(m, false, false, false, NULL, i);
		else
			group_add(m, true, r->bcc, handler_key_epoch(r->key), handler_key_handler(r->key), i);
	}
	for (size_t i = 1; i < m->ngroups; i++)
		if (keep_rank(&m->groups[i]) > keep_rank(&m->groups[0])) {
			tmp = m->groups[0];
			m->groups[0] = m->groups[i];
			m->groups[i] = tmp;
		}
}

/*
 * Without split delivery every recipient with a key shares one copy, whose
 * RecipientInfos (or PKESKs) name each key: the first Bcc recipient (one
 * that no To, Cc, Resent-To or Resent-Cc names) whose key would sit there
 * beside another recipient's, or NULL.
 */
static const struct rcpt *
bcc_exposed(const struct message *m)
{
	const struct rcpt *bcc = NULL;
	bool other = false;

	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key == NULL)
			continue;
		if (r->bcc && bcc == NULL)
			bcc = r;
	}
	for (size_t i = 0; bcc != NULL && i < m->nrcpts && !other; i++) {
		const struct rcpt *r = &m->rcpts[i];

		other = !r->local && r->policy != POLICY_NEVER && r->key != NULL && r != bcc &&
		    (r->norm == NULL || bcc->norm == NULL || strcmp(r->norm, bcc->norm) != 0);
	}
	return other ? bcc : NULL;
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

/*
 * The key to encrypt to r with, as its Format says: through the S/MIME or
 * the OpenPGP handler, or (auto) whichever finds one, FormatPreference
 * asked first.  The key store or gpg failing is an error; no key is not.
 */
static cables_status
find_key(struct rcpt *r, const struct milter_env *env, struct cables_err *err)
{
	const struct config *cfg = env->cfg;
	enum key_format want = (enum key_format)policy_get(&cfg->policy, r->norm, PA_FORMAT, NULL);
	const struct body_handler *order[NHANDLERS];
	char *why[NHANDLERS] = { NULL };
	size_t n = 0, k;
	cables_status st = CABLES_OK;

	if (want != FORMAT_AUTO)
		order[n++] = handler_of(want);
	else if (cfg->format_preference == PREFER_PGP)
		order[n++] = &handler_pgp, order[n++] = &handler_smime;
	else
		order[n++] = &handler_smime, order[n++] = &handler_pgp;
	for (k = 0; k < n && r->key == NULL && st == CABLES_OK; k++)
		r->key = order[k]->find_key(env, r->norm, KEY_ENCRYPT, &why[k], &st, err);
	if (r->key == NULL && st == CABLES_OK) {
		/* The reason: the format that has some key (however unusable), else the first. */
		size_t use = 0;

		if (n == 2 && strcmp(why[0], order[0]->no_key) == 0 && strcmp(why[1], order[1]->no_key) != 0)
			use = 1;
		if (n == 2 && strcmp(why[0], order[0]->no_key) != 0 && strcmp(why[1], order[1]->no_key) != 0) {
			r->why_what = "key";
			r->why_no_key = xasprintf("%s: %s; %s: %s", order[0]->key_noun, why[0], order[1]->key_noun, why[1]);
		} else {
			r->why_what = order[use]->key_noun;
			r->why_no_key = why[use];
			why[use] = NULL;
		}
	}
	for (k = 0; k < n; k++)
		free(why[k]);
	return st;
}

/*
 * keyd says r's domain must not get plaintext (remembered as encrypting,
 * or its _cables-policy p=require): r, under policy encrypt, is treated
 * exactly as a require recipient without a key (On-KeyNotFound), and its
 * reason says why.
 */
static void
no_downgrade(struct message *m, struct rcpt *r, const struct keyd_found *f)
{
	char *was = r->why_no_key, since[32];
	const char *at = strrchr(r->norm, '@');

	r->policy = POLICY_REQUIRE;
	m->has_require = true;
	if (f->encrypting == KEYD_ENCRYPTING_REMEMBERED) {
		format_day(f->since, since, sizeof(since));
		r->why_no_key = xasprintf("%s%s%s%s; %s is remembered as encrypting since %s (DowngradeMemory)",
		    was != NULL ? was : "no key", f->reason[0] != '\0' ? " (cables-keyd: " : "", f->reason,
		    f->reason[0] != '\0' ? ")" : "", at != NULL ? at + 1 : r->norm, since);
	} else {
		r->why_no_key = xasprintf("%s%s%s%s; %s publishes _cables-policy p=require",
		    was != NULL ? was : "no key", f->reason[0] != '\0' ? " (cables-keyd: " : "", f->reason,
		    f->reason[0] != '\0' ? ")" : "", at != NULL ? at + 1 : r->norm);
	}
	free(was);
	if (r->why_what == NULL)
		r->why_what = "key";
}

/*
 * keyd could not answer for r (a lookup that failed or ran late, keyd
 * unreachable, a key change held back) and said nothing of its domain:
 * when the store remembers the domain as encrypting (within
 * DowngradeMemory), r is one under require without a key, whatever
 * On-KeydError says, as keyd would have said (downgrade.c).
 */
static bool
remembered_encrypting(struct message *m, struct rcpt *r, const struct milter_env *env, const char *why)
{
	const char *at = strrchr(r->norm, '@');
	struct encrypting_domain d;
	struct keyd_found f;

	if (r->policy != POLICY_ENCRYPT || at == NULL || env->cfg->downgrade_memory_s == 0 ||
	    keystore_encrypting_get(env->ks, at + 1, &d, NULL) != CABLES_OK ||
	    d.last_seen + (long long)env->cfg->downgrade_memory_s < (long long)env->now)
		return false;
	memset(&f, 0, sizeof(f));
	f.encrypting = KEYD_ENCRYPTING_REMEMBERED;
	f.since = d.first_seen;
	strlcpy_c(f.reason, why, sizeof(f.reason));
	log_info("key lookup: %s: cables-keyd cannot answer (%s), and %s is remembered as encrypting: as under require",
	    r->norm, why, d.domain);
	no_downgrade(m, r, &f);
	return true;
}

/*
 * Recipients the store has no key for: ask cables-keyd, which looks in DNS
 * and stores what it finds, then look in the store again.  When keyd cannot
 * be asked (or cannot answer for someone), On-KeydError decides: tempfail
 * or reject decides the message here (false); accept goes on without.
 */
static bool
ask_keyd(struct message *m, const struct milter_env *env, struct outcome *out)
{
	const struct config *cfg = env->cfg;
	const char **addrs = xcalloc(m->nrcpts + 1, sizeof(*addrs));
	size_t *idx = xcalloc(m->nrcpts + 1, sizeof(*idx)), n = 0;
	enum keyd_outcome *ans = xcalloc(m->nrcpts + 1, sizeof(*ans));
	struct keyd_found *found = xcalloc(m->nrcpts + 1, sizeof(*found));
	enum fail_action action = ACTION_ACCEPT;
	struct cables_err err;
	char why[CABLES_ERR_MAX] = "", refused[CABLES_ERR_MAX] = "", text[CABLES_ERR_MAX + 64];
	cables_status st = CABLES_OK;
	bool go_on = true;

	for (size_t i = 0; cfg->keyd_socket != NULL && i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key != NULL || r->norm == NULL)
			continue;
		if (keyd_address_takes(r->norm)) {
			addrs[n] = r->norm;
			idx[n++] = i;
			continue;
		}
		/*
		 * An address keyd refuses (e.g. a quoted local part with a space)
		 * would fail the whole batch, and so every recipient of the
		 * message: it alone gets On-KeydError, as a lookup that failed.
		 */
		if (remembered_encrypting(m, &m->rcpts[i], env, "cables-keyd cannot look up this address form"))
			continue;
		{
			enum fail_action a = (enum fail_action)policy_get(&cfg->policy, r->norm, PA_ON_KEYD_ERROR, NULL);
			char shown[65], what[CABLES_ERR_MAX];

			strlcpy_c(shown, r->norm, sizeof(shown));
			keyd_sanitize(shown);
			snprintf(what, sizeof(what), "'%s%s': cables-keyd cannot look up this address form", shown,
			    strlen(r->norm) >= sizeof(shown) ? "..." : "");
			log_warnx("key lookup: %s (On-KeydError %s)", what, fail_action_name(a));
			if (a != ACTION_ACCEPT && refused[0] == '\0')
				strlcpy_c(refused, what, sizeof(refused));
			action = fail_action_combine(action, a);
		}
	}
	if (n == 0)
		goto decide;
	if ((st = keyd_ask(cfg->keyd_socket, addrs, n, cfg->lookup_timeout_ms + 1000, ans, found, why, sizeof(why),
	    &err)) != CABLES_OK)
		strlcpy_c(why, err.msg, sizeof(why));
	for (size_t k = 0; k < n; k++) {
		struct rcpt *r = &m->rcpts[idx[k]];

		if (st == CABLES_OK && ans[k] == KEYD_OUTCOME_FOUND) {
			struct milter_env confirmed = *env;

			/* Now the keys keyd answered with, those from DNS included. */
			confirmed.confirmed = &found[k];
			free(r->why_no_key);
			r->why_no_key = NULL;
			if (find_key(r, &confirmed, &err) != CABLES_OK) {
				outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
				go_on = false;
				goto out;
			}
		} else if (st == CABLES_OK && found[k].encrypting != KEYD_ENCRYPTING_NO && r->policy == POLICY_ENCRYPT) {
			/* A domain that encrypts gets no plaintext: the recipient is one under require without a key. */
			no_downgrade(m, r, &found[k]);
		} else if (st == CABLES_OK && ans[k] == KEYD_OUTCOME_NONE && found[k].reason[0] != '\0' &&
		    r->why_no_key != NULL) {
			char *was = r->why_no_key;

			r->why_no_key = xasprintf("%s (cables-keyd: %s)", was, found[k].reason);
			free(was);
		} else if (st == CABLES_OK && ans[k] == KEYD_OUTCOME_REJECT) {
			action = fail_action_combine(action, ACTION_REJECT);
		} else if ((st != CABLES_OK || ans[k] == KEYD_OUTCOME_TEMPFAIL) &&
		    !remembered_encrypting(m, r, env, st == CABLES_OK ? found[k].reason : why)) {
			action = fail_action_combine(action,
			    (enum fail_action)policy_get(&cfg->policy, r->norm, PA_ON_KEYD_ERROR, NULL));
		}
	}
decide:
	if (why[0] == '\0')
		strlcpy_c(why, refused, sizeof(why));
	if (action == ACTION_TEMPFAIL || action == ACTION_REJECT) {
		snprintf(text, sizeof(text), "Cables: cannot look up the recipients' keys: %s", why);
		outcome_set(out, action == ACTION_REJECT ? VERDICT_REJECT : VERDICT_TEMPFAIL, fail_action_name(action),
		    "key lookup: %s%s", why, strstr(why, "(On-KeyChange") != NULL ? "" : " (On-KeydError)");
		if (action == ACTION_REJECT)
			outcome_reply(out, "550", "5.7.1", text);
		else
			outcome_reply(out, "451", "4.7.1", text);
		go_on = false;
	}
out:
	free(addrs);
	free(idx);
	free(ans);
	free(found);
	return go_on;
}

/*
 * Without split delivery (ReinjectTo) every recipient shares one copy, and
 * an epoch key beside a long-term one would give the forward secrecy away
 * (the long-term key, stolen later, opens the copy).  Then the recipients
 * with epoch keys fall back to their long-term keys under ForwardSecrecy
 * prefer (noted in m->fs_note for the log line; one without a usable
 * long-term key keeps its epoch key, noted too); under require *fs_require names the
 * first one, and the message waits.
 */
static void
shared_copy_forward_secrecy(struct message *m, const struct milter_env *env, const char **fs_require)
{
	size_t nepoch = 0, nlong = 0, len;

	*fs_require = NULL;
	m->fs_note[0] = '\0';
	if (env->reinject_key != NULL)
		return;
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key == NULL)
			continue;
		if (handler_key_epoch(r->key))
			nepoch++;
		else
			nlong++;
	}
	if (nepoch == 0 || nlong == 0)
		return;
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key == NULL || !handler_key_epoch(r->key))
			continue;
		if (policy_get(&env->cfg->policy, r->norm, PA_FORWARD_SECRECY, NULL) == FS_REQUIRE) {
			if (*fs_require == NULL)
				*fs_require = r->addr;
			continue;
		}
		/*
		 * No usable long-term key beside the epoch key: keep the epoch
		 * key in the shared copy (its forward secrecy is lost to the
		 * others' long-term keys, and the log says so) rather than leave
		 * the recipient keyless, which could send the copy in plaintext.
		 */
		len = strlen(m->fs_note);
		if (!handler_key_drop_epoch(r->key)) {
			snprintf(m->fs_note + len, sizeof(m->fs_note) - len, "%sepoch key kept beside long-term keys for %s",
			    len == 0 ? "fs=" : ", ", r->addr);
			continue;
		}
		snprintf(m->fs_note + len, sizeof(m->fs_note) - len, "%slong-term for %s", len == 0 ? "fs=" : ", ", r->addr);
	}
	len = strlen(m->fs_note);
	if (len > 0)
		snprintf(m->fs_note + len, sizeof(m->fs_note) - len,
		    " (forward secrecy not possible: one copy with long-term keys, no ReinjectTo for split delivery)");
}

void
outbound_plan(struct message *m, const struct milter_env *env, struct outcome *out)
{
	const struct config *cfg = env->cfg;
	size_t nlocal = 0, nremote = 0, nnever = 0, nkeyless = 0;
	unsigned int formats = 0;
	struct cables_err err;
	cables_status st;
	char *blocked = NULL, *keyless = NULL, note[300];
	const char *fs_require;

	m->plan = PLAN_NONE;
	m->blocked_bcc = false;
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
		/* ForwardSecrecy require: encrypted to an epoch key or not sent; never plaintext. */
		if (r->policy == POLICY_ENCRYPT && r->norm != NULL &&
		    policy_get(&cfg->policy, r->norm, PA_FORWARD_SECRECY, NULL) == FS_REQUIRE)
			r->policy = POLICY_REQUIRE;
		if (r->policy == POLICY_NEVER)
			nnever++;
		if (r->policy == POLICY_REQUIRE)
			m->has_require = true;
	}
	if (nremote == 0) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "no remote recipients");
		return;
	}
	hold_release_check(m, env);	/* a released copy signs with its original's login */
	if ((st = plan_signature(m, env, &err)) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		return;
	}
	message_find_bcc(m, cfg);
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key != NULL)
			continue;
		if (find_key(r, env, &err) != CABLES_OK) {
			outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
			return;
		}
	}
	if (!ask_keyd(m, env, out))
		return;
	shared_copy_forward_secrecy(m, env, &fs_require);
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER)
			continue;
		if (r->key != NULL) {
			formats |= 1u << handler_key_handler(r->key)->format;
			continue;
		}
		nkeyless++;
		if (r->policy == POLICY_REQUIRE) {
			if (blocked == NULL)
				blocked = xasprintf("no usable %s for %s: %s", r->why_what, r->addr, r->why_no_key);
			m->on_key_not_found = fail_action_combine(m->on_key_not_found,
			    (enum fail_action)policy_get(&cfg->policy, r->norm, PA_ON_KEY_NOT_FOUND, NULL));
		} else if (keyless == NULL) {
			keyless = xasprintf("no usable %s for %s: %s", r->why_what, r->addr, r->why_no_key);
		}
	}
	if (blocked == NULL && fs_require != NULL) {
		/* ForwardSecrecy require: an epoch key alone in its copy, or the message waits. */
		blocked = xasprintf("forward secrecy not possible for %s (ForwardSecrecy require): its copy would hold "
		    "long-term keys too (no ReinjectTo for split delivery)", fs_require);
		m->on_key_not_found = ACTION_TEMPFAIL;
	}
	make_groups(m);
	if (blocked == NULL && formats == 3u && (m->ngroups == 1 || env->reinject_key == NULL) && m->has_require) {
		/* One copy cannot be both S/MIME and OpenPGP. */
		blocked = xstrdup("S/MIME and OpenPGP recipients in one message (no ReinjectTo for split delivery)");
		m->on_key_not_found = ACTION_TEMPFAIL;
	}
	if (blocked != NULL) {
		/* Decided at end of message: content the sender encrypted may pass. */
		m->plan = PLAN_BLOCKED;
		strlcpy_c(m->blocked_reason, blocked, sizeof(m->blocked_reason));
		outcome_set(out, VERDICT_CONTINUE, "continue", "blocked unless already encrypted");
	} else if (m->ngroups > 1 && env->reinject_key != NULL) {
		m->plan = PLAN_SPLIT;
		strlcpy_c(m->blocked_reason, keyless != NULL ? keyless : "policy never or local recipients",
		    sizeof(m->blocked_reason));
		outcome_set(out, VERDICT_CONTINUE, "continue", "split delivery");
	} else if (nnever == 0 && nlocal == 0 && nkeyless == 0 && formats != 3u && bcc_exposed(m) != NULL) {
		/* One copy would show every recipient the Bcc recipient's key: decided at end of message. */
		m->plan = PLAN_BLOCKED;
		m->blocked_bcc = true;
		snprintf(m->blocked_reason, sizeof(m->blocked_reason), "Bcc recipient %s would be named in the copy "
		    "the other recipients get (no ReinjectTo for split delivery)", bcc_exposed(m)->addr);
		outcome_set(out, VERDICT_CONTINUE, "continue", "blocked unless already encrypted");
	} else if (nnever == 0 && nlocal == 0 && nkeyless == 0 && formats != 3u) {
		/* Every recipient has a key; no Bcc recipient shares a copy with another. */
		m->plan = PLAN_ENCRYPT;
		outcome_set(out, VERDICT_CONTINUE, "continue", "encrypting");
	} else {
		const char *reason = keyless != NULL ? keyless : formats == 3u && nnever == 0 && nlocal == 0 ?
		    "S/MIME and OpenPGP recipients in one message (no ReinjectTo for split delivery)" : nnever == nremote ?
		    "policy never for every remote recipient" : nlocal > 0 ?
		    "local and remote recipients in one message (no ReinjectTo for split delivery)" :
		    "recipients with policy never and others in one message (no ReinjectTo for split delivery)";

		strlcpy_c(m->blocked_reason, reason, sizeof(m->blocked_reason));
		if (m->has_require) {
			/* A require recipient would share a plaintext copy: decided at end of message. */
			m->plan = PLAN_BLOCKED;
			outcome_set(out, VERDICT_CONTINUE, "continue", "blocked unless already encrypted");
		} else if (clear_signer(m) != NULL) {
			/* Clear-signing is an S/MIME feature (multipart/signed that every client shows). */
			m->plan = PLAN_SIGN_ONLY;
			outcome_set(out, VERDICT_CONTINUE, "continue", "signing only");
		} else if (nnever == nremote) {
			outcome_set(out, VERDICT_ACCEPT, "pass", "%s%s", reason, sign_note(m, note, sizeof(note)));
		} else {
			outcome_set(out, VERDICT_ACCEPT, "plaintext", "%s (policy encrypt)%s", reason,
			    sign_note(m, note, sizeof(note)));
			outcome_classify(out, CLASS_PLAINTEXT, NULL);
		}
	}
	free(blocked);
	free(keyless);
}

/* What encrypt_for() did. */
struct encrypted {
	int nrecipients;	/* not counting the sender */
	bool with_self;
	bool signed_;
	struct handler_result res;
};

/* The group of every recipient (the whole message when there are no groups). */
static struct group
whole_message(const struct message *m, size_t *storage)
{
	struct group g = { true, false, false, &handler_smime, storage, m->nrcpts };

	for (size_t i = 0; i < m->nrcpts; i++) {
		storage[i] = i;
		if (m->rcpts[i].key != NULL) {
			g.h = handler_key_handler(m->rcpts[i].key);
			g.epoch |= handler_key_epoch(m->rcpts[i].key);
		}
	}
	return g;
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

static cables_status
spool_sink_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
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
in_fields(const struct handler_field *fields, size_t n, const char *name)
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
 * missing).  No trace field: what was done goes to the log, never to the
 * world.
 */
static int
rewrite_headers(const struct message *m, const struct mta *mta, const struct handler_field *fields, size_t n)
{
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
	return 0;
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

/*
 * Encrypt the content entity for group g through its handler: to the
 * members' keys (each once) and the sender's (EncryptToSelf, but never
 * beside epoch keys: the sender's long-term key would open the copy once
 * stolen, and the recipients' forward secrecy would be gone), signed with
 * the sender's key of the same format when signing, naming no key on a Bcc
 * recipient's copy.
 */
static cables_status
encrypt_for(const struct message *m, const struct milter_env *env, const struct group *g, bool signing,
    const struct protect *pr, struct byte_sink *sink, struct encrypted *enc, struct cables_err *err)
{
	const struct body_handler *h = g->h;
	struct handler_key **keys = xcalloc(g->n + 1, sizeof(*keys)), *self = NULL;
	struct handler_encrypt in;
	struct entity_src src;
	struct buf head;
	size_t n = 0;
	cables_status st;

	for (size_t k = 0; k < g->n; k++) {
		struct handler_key *key = m->rcpts[g->members[k]].key;
		bool dup = key == NULL;

		for (size_t j = 0; j < n && !dup; j++)
			dup = h->same_key(keys[j], key);
		if (!dup)
			keys[n++] = key;
	}
	enc->nrecipients = (int)n;
	if (m->sender[0] != '\0') {
		char *norm = addr_normalize(m->sender, &env->cfg->addr), *why = NULL;
		cables_status lst;

		if (norm != NULL && !g->epoch && policy_get(&env->cfg->policy, norm, PA_SELF, NULL))
			self = h->find_key(env, norm, KEY_ENCRYPT, &why, &lst, NULL);
		free(why);
		free(norm);
		if (self != NULL)
			keys[n++] = self;
	}
	enc->with_self = self != NULL;
	buf_init(&head);
	protect_entity(pr, m, &head, &src);
	in.entity = &src;
	in.keys = keys;
	in.nkeys = n;
	in.hidden = g->bcc;
	in.signer = signing ? m->signers[h->format] : NULL;
	/* Padding when any member's entry asks for it (the stricter choice, as for header protection). */
	in.pad = false;
	for (size_t k = 0; k < g->n && !in.pad; k++)
		in.pad = policy_get(&env->cfg->policy, m->rcpts[g->members[k]].norm, PA_PADDING, NULL) == PAD_BUCKETS;
	in.pad_cap = env->cfg->max_message_size;
	enc->signed_ = in.signer != NULL;
	memset(&enc->res, 0, sizeof(enc->res));
	st = h->encrypt(env, &in, sink, &enc->res, err);
	OPENSSL_cleanse(head.data, head.len);
	buf_release(&head);
	handler_key_free(self);
	free(keys);
	return st;
}

/* What was done to a copy, for the log line (never a header field on the wire). */
static void
trace_text(const struct group *g, const struct encrypted *enc, char *out, size_t len)
{
	snprintf(out, len, "%s; recipients=%d%s%s%s", enc->res.trace, enc->nrecipients,
	    enc->with_self ? "; self" : "", enc->signed_ ? "; signed" : "", g->bcc ? "; bcc" : "");
}

/* Encrypt group g in the current transaction. */
static void
encrypt_in_place(struct message *m, const struct milter_env *env, const struct mta *mta, const struct group *g,
    bool signing, struct outcome *out)
{
	struct body_sink bs = { mta, false };
	struct byte_sink sink = { body_sink_write, &bs };
	struct encrypted enc;
	struct protect pr;
	struct cables_err err;
	char note[160];

	if (protect_plan(&pr, m, env, g->members, g->n, already_signed(m), &err) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		goto out;
	}
	if (encrypt_for(m, env, g, signing, &pr, &sink, &enc, &err) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, !bs.started, m->has_require, err.msg);
		goto out;
	}
	if (rewrite_headers(m, mta, enc.res.fields, enc.res.nfields) != 0 || protect_outer(&pr, mta) != 0) {
		outcome_internal_error(out, m->on_internal_error, false, m->has_require, "the MTA refused a header change");
		goto out;
	}
	protect_note(&pr, note, sizeof(note));
	if (enc.res.padded > 0) {
		size_t len = strlen(note);

		snprintf(note + len, sizeof(note) - len, " pad=%zu", enc.res.padded);
	}
	outcome_set(out, VERDICT_MODIFIED, "encrypted", "%s recipients=%d%s%s%s size=%zu%s%s%s", enc.res.log,
	    enc.nrecipients, enc.with_self ? " +self" : "", enc.signed_ ? " signed" : "", g->bcc ? " bcc" : "",
	    spool_size(m->body), note,
	    m->sign_note[0] != '\0' ? " " : "", m->sign_note);
	outcome_classify(out, CLASS_ENCRYPTED, g->h->name);
out:
	protect_release(&pr);
}

/* Replace the content with the multipart/signed entity (the message leaves unencrypted). */
static void
clear_sign(struct message *m, const struct milter_env *env, const struct mta *mta,
    const struct handler_signed *sig, struct outcome *out)
{
	struct handler_field ct = { "Content-Type", sig->content_type };
	struct buf head;
	int rc;

	buf_init(&head);
	message_content_head(m, &head);
	rc = mta->replacebody(mta->ctx, sig->prologue.data, sig->prologue.len) == 0 &&
	    mta->replacebody(mta->ctx, head.data, head.len) == 0 &&
	    mta_replace_body(mta, m->body, 0, (off_t)spool_size(m->body)) == 0 &&
	    mta->replacebody(mta->ctx, sig->epilogue.data, sig->epilogue.len) == 0 ? 0 : -1;
	buf_release(&head);
	if (rc == 0)
		rc = rewrite_headers(m, mta, &ct, 1);
	if (rc != 0) {
		outcome_internal_error(out, m->on_internal_error, false, m->has_require, "the MTA refused a change");
		return;
	}
	outcome_set(out, VERDICT_MODIFIED, "signed", "format=%s, not encrypted: %s", sig->format, m->blocked_reason);
	outcome_classify(out, CLASS_SIGNED, sig->format);
}

/*
 * A copy of the message for group g, re-injected: encrypted (or as it is,
 * clear-signed when sig is not NULL).  *qid gets the MTA's queue ID for
 * it, trace what was done for the log ("" when nothing).
 */
static cables_status
send_copy(const struct message *m, const struct milter_env *env, const struct group *g,
    const struct handler_signed *sig, bool signing, char *qid, size_t qlen, char *trace, size_t tlen,
    struct cables_err *err)
{
	struct encrypted enc;
	struct protect pr;
	struct spool *encrypted = NULL, *headers = NULL;
	struct byte_sink sink;
	struct entity_src body;
	struct buf first, content, head;
	cables_status st = CABLES_OK;
	size_t len;

	trace[0] = '\0';
	buf_init(&first);
	buf_init(&content);
	buf_init(&head);
	entity_src_init(&body);
	memset(&pr, 0, sizeof(pr));
	if (g->encrypt) {
		encrypted = spool_new(env->cfg->temp_dir, SPOOL_MEMORY_LIMIT, 0);
		sink.write = spool_sink_write;
		sink.arg = encrypted;
		if ((st = protect_plan(&pr, m, env, g->members, g->n, already_signed(m), err)) != CABLES_OK)
			goto out;
		if ((st = encrypt_for(m, env, g, signing, &pr, &sink, &enc, err)) != CABLES_OK)
			goto out;
		if ((st = protect_headers(&headers, &pr, env->cfg->temp_dir, err)) != CABLES_OK)
			goto out;
		trace_text(g, &enc, trace, tlen);
		len = strlen(trace);
		protect_note(&pr, trace + len, tlen - len);
		len = strlen(trace);
		if (enc.res.padded > 0)
			snprintf(trace + len, tlen - len, " pad=%zu", enc.res.padded);
		for (size_t i = 0; i < enc.res.nfields; i++)
			buf_printf(&content, "%s: %s\r\n", enc.res.fields[i].name, enc.res.fields[i].value);
		buf_appends(&content, "MIME-Version: 1.0\r\n");
		entity_src_spool(&body, encrypted, 0, -1);
	} else if (sig != NULL) {
		snprintf(trace, tlen, "signed; format=%s", sig->format);
		buf_printf(&content, "MIME-Version: 1.0\r\nContent-Type: %s\r\n", sig->content_type);
		message_content_head(m, &head);
		entity_src_mem(&body, sig->prologue.data, sig->prologue.len);
		entity_src_mem(&body, head.data, head.len);
		entity_src_spool(&body, m->body, 0, -1);
		entity_src_mem(&body, sig->epilogue.data, sig->epilogue.len);
	} else {
		entity_src_spool(&body, m->body, 0, -1);
	}
	st = copy_send(m, env, g->members, g->n, headers, &first, content.len > 0 ? &content : NULL, &body, qid, qlen,
	    err);
out:
	protect_release(&pr);
	spool_free(headers);
	spool_free(encrypted);
	buf_release(&first);
	buf_release(&content);
	OPENSSL_cleanse(head.data, head.len);
	buf_release(&head);
	return st;
}

static const char *
group_what(const struct group *g)
{
	if (!g->encrypt)
		return "as it is";
	if (g->h->format == FORMAT_PGP)
		return g->bcc ? "OpenPGP (bcc)" : "OpenPGP";
	return g->bcc ? "encrypted (bcc)" : "encrypted";
}

/*
 * Split delivery: the first group in place (nothing is committed until the
 * milter answers), then a copy for every other group, then those groups'
 * recipients out of the transaction.
 */
static void
split(struct message *m, const struct milter_env *env, const struct mta *mta, const struct handler_signed *sig,
    bool signing, struct outcome *out)
{
	struct buf copies, kept;
	struct cables_err err;
	char qid[64], trace[200];
	size_t len;

	if (m->groups[0].encrypt)
		encrypt_in_place(m, env, mta, &m->groups[0], signing, out);
	else if (sig != NULL)
		clear_sign(m, env, mta, sig, out);
	else {
		outcome_set(out, VERDICT_MODIFIED, "plaintext", "%s", m->blocked_reason);
		outcome_classify(out, CLASS_PLAINTEXT, NULL);
	}
	if (out->verdict != VERDICT_MODIFIED)
		return;
	buf_init(&copies);
	buf_init(&kept);
	for (size_t i = 1; i < m->ngroups; i++) {
		if (send_copy(m, env, &m->groups[i], sig, signing, qid, sizeof(qid), trace, sizeof(trace), &err) !=
		    CABLES_OK) {
			/* A copy not queued would be lost: the whole transaction waits. */
			outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery: %s%s%s%s", err.msg,
			    copies.len > 0 ? " (already queued: " : "", copies.len > 0 ? copies.data : "",
			    copies.len > 0 ? ")" : "");
			outcome_reply(out, "451", "4.3.0", "Cables: cannot queue a copy for some recipients, try again later");
			goto out;
		}
		copy_describe(m, group_what(&m->groups[i]), m->groups[i].members, m->groups[i].n, qid, &copies);
		if (trace[0] != '\0')
			buf_printf(&copies, " (%s)", trace);
	}
	for (size_t i = 1; i < m->ngroups; i++)
		if (copy_remove(m, mta, m->groups[i].members, m->groups[i].n) != 0) {
			outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "split delivery: the MTA refused to remove "
			    "a recipient (copies were queued: %s)", copies.data);
			outcome_reply(out, "451", "4.3.0", "Cables: split delivery failed, try again later");
			goto out;
		}
	copy_describe(m, group_what(&m->groups[0]), m->groups[0].members, m->groups[0].n, NULL, &kept);
	len = strlen(out->detail);
	snprintf(out->detail + len, sizeof(out->detail) - len, "; split: kept %s; copies %s", kept.data,
	    copies.data);
out:
	buf_release(&copies);
	buf_release(&kept);
}

/* Will some copy leave unencrypted (and so be clear-signed with S/MIME)? */
static bool
needs_clear_sign(const struct message *m)
{
	if (m->plan == PLAN_SIGN_ONLY)
		return true;
	for (size_t i = 0; m->plan == PLAN_SPLIT && i < m->ngroups; i++)
		if (!m->groups[i].encrypt)
			return true;
	return false;
}

/*
 * Forward secrecy of an encrypted message, for its log line: "fs=epoch"
 * when a recipient got an epoch key (with "no self" when EncryptToSelf was
 * left out for it), "fs=long-term" when one whose ForwardSecrecy is prefer
 * got a long-term key (its domain offered no epoch key, or no longer does:
 * a downgrade an operator may want to see), and m->fs_note.
 */
static void
fs_log(const struct message *m, const struct milter_env *env, struct outcome *out)
{
	bool epoch = false, long_term = false, self = false;
	size_t len = strlen(out->detail);
	char *norm;

	if (out->verdict != VERDICT_MODIFIED)
		return;
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct rcpt *r = &m->rcpts[i];

		if (r->local || r->policy == POLICY_NEVER || r->key == NULL || r->norm == NULL)
			continue;
		if (handler_key_epoch(r->key))
			epoch = true;
		else if (policy_get(&env->cfg->policy, r->norm, PA_FORWARD_SECRECY, NULL) == FS_PREFER)
			long_term = true;
	}
	if (epoch && m->sender[0] != '\0' && (norm = addr_normalize(m->sender, &env->cfg->addr)) != NULL) {
		self = policy_get(&env->cfg->policy, norm, PA_SELF, NULL);
		free(norm);
	}
	if (m->fs_note[0] != '\0')
		snprintf(out->detail + len, sizeof(out->detail) - len, " %s", m->fs_note);
	else if (epoch || long_term)
		snprintf(out->detail + len, sizeof(out->detail) - len, " fs=%s%s%s", epoch ? "epoch" : "",
		    epoch && long_term ? "," : "", long_term ? "long-term" : "");
	len = strlen(out->detail);
	if (self)
		snprintf(out->detail + len, sizeof(out->detail) - len, " (no self copy beside epoch keys)");
}

/* The plan at end of message, for content that is not yet encrypted. */
static void
outbound_transform(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out)
{
	const struct body_handler *ch = clear_signer(m);
	struct handler_signed sig;
	struct entity_src src;
	struct buf head;
	struct cables_err err;
	size_t *all;
	bool signing, clear;

	signing = any_signer(m) && !already_signed(m);
	clear = signing && ch != NULL && needs_clear_sign(m);
	if (clear) {
		buf_init(&head);
		message_content_head(m, &head);
		entity_src_init(&src);
		entity_src_mem(&src, head.data, head.len);
		entity_src_spool(&src, m->body, 0, -1);
		if (ch->sign(env, m->signers[ch->format], &src, &sig, &err) != CABLES_OK) {
			buf_release(&head);
			outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
			return;
		}
		buf_release(&head);
	}
	switch (m->plan) {
	case PLAN_SPLIT:
		split(m, env, mta, clear ? &sig : NULL, signing, out);
		break;
	case PLAN_SIGN_ONLY:
		if (clear)
			clear_sign(m, env, mta, &sig, out);
		else
			outcome_set(out, VERDICT_ACCEPT, "pass", "already signed; not encrypted: %s", m->blocked_reason);
		break;
	default: {
		struct group g;

		all = xcalloc(m->nrcpts + 1, sizeof(*all));
		g = whole_message(m, all);
		encrypt_in_place(m, env, mta, &g, signing, out);
		free(all);
		break;
	}
	}
	fs_log(m, env, out);
	if (clear)
		handler_signed_release(&sig);
}

void
outbound_finish(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out)
{
	enum mime_crypto crypto;
	struct cables_err err;
	char mislabelled[CABLES_ERR_MAX + 64] = "", why[CABLES_ERR_MAX + 62];
	off_t armor[2];
	size_t len;

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
			outcome_classify(out, CLASS_PLAINTEXT, NULL);
		}
		return;
	}
	if (m->body_status != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, m->body_err.msg);
		return;
	}
	if (mime_detect_armor(message_header_value(m, "Content-Type"),
	    message_header_value(m, "Content-Transfer-Encoding"), m->body, &crypto, armor, &err) != CABLES_OK) {
		outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
		return;
	}
	for (size_t i = 0; i < NHANDLERS && crypto != MIME_PLAIN; i++) {
		cables_status st = handlers[i]->check_ciphertext(m, env, crypto, armor, why, sizeof(why), &err);

		if (st == CABLES_ERR_NOTFOUND)
			continue;
		if (st == CABLES_ERR_IO || st == CABLES_ERR_INTERNAL) {
			outcome_internal_error(out, m->on_internal_error, true, m->has_require, err.msg);
			return;
		}
		if (st != CABLES_OK) {
			snprintf(mislabelled, sizeof(mislabelled), "; %s", why);
			crypto = MIME_PLAIN;
		}
		break;
	}
	if (crypto != MIME_PLAIN) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "already encrypted (%s)", mime_crypto_name(crypto));
		return;
	}
	if (m->plan == PLAN_BLOCKED && !m->blocked_bcc && m->on_key_not_found == ACTION_HOLD)
		hold_message(m, env, mta, out);
	else if (m->plan == PLAN_BLOCKED)
		refuse_no_key(out, m->on_key_not_found, m->blocked_reason, m->blocked_bcc);
	else
		outbound_transform(m, env, mta, out);
	len = strlen(out->detail);
	snprintf(out->detail + len, sizeof(out->detail) - len, "%s", mislabelled);
}
