/* held - releasing and returning held messages; see held.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "held.h"
#include "notice.h"
#include "util.h"

const char *
held_outcome_name(enum held_outcome o)
{
	static const char *const names[] = {
		[HELD_WAITING] = "waiting", [HELD_RELEASED] = "released", [HELD_RETURNED] = "returned",
		[HELD_FAILED] = "failed", [HELD_TAKEN] = "taken", [HELD_TO_RELEASE] = "to-release",
		[HELD_TO_RETURN] = "to-return",
	};

	return names[o];
}

long long
held_backoff(int tries)
{
	long long s = 5;

	for (int i = 1; i < tries && s < 600; i++)
		s *= 2;
	return s < 600 ? s : 600;
}

bool
held_key_usable(const struct keyd_key *key, enum key_format want, time_t now)
{
	if ((want == FORMAT_SMIME && key->format != KEYD_FORMAT_SMIME) ||
	    (want == FORMAT_PGP && key->format != KEYD_FORMAT_PGP))
		return false;
	return key->expires == 0 || key->expires > (long long)now;
}

bool
held_reply_has_key(const struct keyd_lookup_reply *reply, enum key_format want, time_t now, char *why,
    size_t why_len)
{
	const struct keyd_result *r = reply->n == 1 ? &reply->results[0] : NULL;

	if (r == NULL) {
		snprintf(why, why_len, "cables-keyd answered for %zu addresses, not one", reply->n);
		return false;
	}
	if (r->outcome != KEYD_OUTCOME_FOUND) {
		snprintf(why, why_len, "%s%s%s", keyd_outcome_name(r->outcome), r->reason[0] != '\0' ? ": " : "",
		    r->reason);
		return false;
	}
	for (size_t i = 0; i < r->nkeys; i++)
		if (held_key_usable(&r->keys[i], want, now))
			return true;
	snprintf(why, why_len, "no usable %skey (keys of another format or expired only)",
	    want == FORMAT_SMIME ? "S/MIME " : want == FORMAT_PGP ? "OpenPGP " : "");
	return false;
}

/* The lines of text (split in place): a malloc'd array of *n pointers into it. */
static char **
split_lines(char *text, size_t *n)
{
	char **lines = NULL;
	size_t cap = 0;

	*n = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		if (*n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			lines = xreallocarray(lines, cap, sizeof(*lines));
		}
		lines[(*n)++] = l;
	}
	return lines;
}

/* "a@x, b@y" from the recipients of h, for notices. */
static char *
recipient_text(const struct held_record *h)
{
	char *copy = xstrdup(h->recipients), **lines;
	size_t n;
	struct buf b;

	lines = split_lines(copy, &n);
	buf_init(&b);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : ", ", lines[i]);
	free(lines);
	free(copy);
	return b.data != NULL ? b.data : xstrdup("");
}

static void
when_text(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* The notice that a message is held: who waits for which key, and until when. */
static cables_status
notice_held(const struct held_env *env, const struct held_record *h, struct cables_err *err)
{
	char *to = recipient_text(h), until[40];
	struct buf text;
	cables_status st;

	when_text(h->held_at + env->hold_time, until, sizeof(until));
	buf_init(&text);
	buf_printf(&text, "Your message to %s (queue ID %s, held as %s) waits for encryption keys:\n\n", to,
	    h->queue_id, h->id);
	for (const char *p = h->waiting; *p != '\0'; p++)
		buf_appends(&text, *p == '\t' ? ": " : *p == '\n' ? "\n" : (char[]){ *p, '\0' });
	buf_printf(&text, "\nThe policy for these recipients is to send mail to them encrypted only. Your message "
	    "will go, encrypted, as soon as their keys are found. If they are not found by %s, it will come back "
	    "to you. It will never be sent unencrypted.\n", until);
	st = notice_send(env->mail_command, h->sender, "Your message waits for an encryption key", text.data, err);
	buf_release(&text);
	free(to);
	return st;
}

static cables_status
notice_released(const struct held_env *env, const struct held_record *h, struct cables_err *err)
{
	char *to = recipient_text(h), *text;
	cables_status st;

	text = xasprintf("Your message to %s (held as %s) has now been sent, encrypted: the encryption keys it "
	    "waited for were found.\n", to, h->id);
	st = notice_send(env->mail_command, h->sender, "Your message has been sent, encrypted", text, err);
	free(text);
	free(to);
	return st;
}

/*
 * Send h's message (opened) back as a DSN naming the keyless recipients,
 * with why as the reason; then delete the record, only while our claim
 * (until claimed_until) still stands.
 */
static cables_status
do_return(const struct held_env *env, struct held_record *h, const uint8_t *message, size_t message_len,
    const char *why, time_t claimed_until, struct held_result *res, struct cables_err *err)
{
	char *waiting = xstrdup(h->waiting), **lines, *explanation, *to = recipient_text(h);
	struct notice_failed *failed;
	size_t n;
	cables_status st;

	lines = split_lines(waiting, &n);
	failed = xcalloc(n + 1, sizeof(*failed));
	for (size_t i = 0; i < n; i++) {
		char *tab = strchr(lines[i], '\t');

		failed[i].addr = lines[i];
		failed[i].why = tab != NULL ? tab + 1 : "no usable key";
		if (tab != NULL)
			*tab = '\0';
	}
	explanation = xasprintf("Your message to %s (queue ID %s, held as %s) could not be sent: %s.\n"
	    "These recipients must receive mail encrypted, and no usable encryption key was found for them. The "
	    "message was not sent to anyone, and never unencrypted. It is attached.\n", to, h->queue_id, h->id, why);
	st = notice_return(env->mail_command, h->sender, env->reporting_host, failed, n, explanation, message,
	    message_len, err);
	if (st == CABLES_OK) {
		res->outcome = HELD_RETURNED;
		snprintf(res->detail, sizeof(res->detail), "returned to %s: %s", h->sender, why);
		/* Only under our claim: a record another process took over meanwhile is its business. */
		strlcpy_c(h->state, "released", sizeof(h->state));
		h->action[0] = '\0';
		if (keystore_held_update_claimed(env->ks, h, claimed_until, NULL) == CABLES_OK)
			st = keystore_held_delete(env->ks, h->id, err);
	} else {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "cannot return it to %s: %s", h->sender, err != NULL ?
		    err->msg : "MailCommand failed");
	}
	free(explanation);
	free(failed);
	free(lines);
	free(waiting);
	free(to);
	return st;
}

/* Which waiting recipients still have no key: "ADDRESS<TAB>why" lines into still; how many. */
static size_t
still_waiting(const struct held_env *env, const struct held_record *h, struct buf *still, struct buf *shown)
{
	char *copy = xstrdup(h->waiting), **lines, why[CABLES_ERR_MAX];
	size_t n, missing = 0;

	lines = split_lines(copy, &n);
	for (size_t i = 0; i < n; i++) {
		char *tab = strchr(lines[i], '\t');

		if (tab != NULL)
			*tab = '\0';
		why[0] = '\0';
		if (env->has_key(env->arg, lines[i], why, sizeof(why)))
			continue;
		for (char *p = why; *p != '\0'; p++)
			if ((unsigned char)*p < ' ')
				*p = ' ';
		buf_printf(still, "%s\t%s\n", lines[i], why[0] != '\0' ? why : tab != NULL ? tab + 1 : "no usable key");
		buf_printf(shown, "%s%s (%s)", missing == 0 ? "" : ", ", lines[i], why[0] != '\0' ? why : "no usable key");
		missing++;
	}
	free(lines);
	free(copy);
	return missing;
}

/* The re-held record remembers the held notice this look sent, so that it is not sent twice. */
static void
keep_held_notice(const struct held_env *env, const struct held_record *h)
{
	struct held_record now;

	if (!(h->notified & HELD_NOTIFIED_HELD) || keystore_held_get(env->ks, h->id, false, &now, NULL) != CABLES_OK)
		return;
	if (!(now.notified & HELD_NOTIFIED_HELD)) {
		now.notified |= HELD_NOTIFIED_HELD;
		keystore_held_update(env->ks, &now, NULL);
	}
	held_record_release(&now);
}

/* Is s exactly n lowercase hex digits? */
static bool
hex_ok(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/*
 * Resubmit h's message (opened) with its release field first; mark it
 * released.  Our claim (until claimed_until) is the "releasing" mark: the
 * milter's re-hold of the resubmitted copy ends it, so every write after
 * MailCommand is compare-and-set on it, and a re-held record is never
 * overwritten as released (released records are pruned: the message
 * would be lost).
 */
static cables_status
release(const struct held_env *env, struct held_record *h, const uint8_t *message, size_t message_len,
    time_t now, time_t claimed_until, struct held_result *res, struct cables_err *err)
{
	char *copy, **rcpts, *first, token[KEYSTORE_HELD_TOKEN_LEN + 1];
	struct cables_err terr;
	bool tell;
	size_t n;
	cables_status st;

	/*
	 * A sealed record's token is one only the milter can make (heldseal.h);
	 * an older one's is the row's, which is written into the field only
	 * when it is what the milter wrote (hex: no line break to inject).
	 */
	strlcpy_c(token, h->token, sizeof(token));
	if (h->sealed && (env->open_key == NULL ||
	    held_release_token(env->open_key, env->open_arg, h, (long long)now, token, &terr) != CABLES_OK)) {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "no release token: %s", env->open_key == NULL ?
		    "not the milter" : terr.msg);
		return CABLES_OK;
	}
	if (!hex_ok(h->id, KEYSTORE_HELD_ID_LEN) || !hex_ok(token, KEYSTORE_HELD_TOKEN_LEN)) {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "the record's ID or token is malformed");
		return CABLES_OK;
	}
	copy = xstrdup(h->recipients);
	rcpts = split_lines(copy, &n);
	first = xasprintf("X-Cables-Release: %s %lld %s", h->id, (long long)now, token);
	st = notice_resubmit(env->mail_command, h->sender, (const char *const *)rcpts, n, first, message,
	    message_len, err);
	free(first);
	free(rcpts);
	free(copy);
	if (st != CABLES_OK) {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "resubmission failed: %s", err != NULL ? err->msg : "?");
		return CABLES_OK;	/* the caller keeps the action for a later try */
	}
	res->outcome = HELD_RELEASED;
	snprintf(res->detail, sizeof(res->detail), "resubmitted to %zu recipient%s (every key found)", n,
	    n == 1 ? "" : "s");
	tell = h->notify && !(h->notified & HELD_NOTIFIED_RELEASED);
	strlcpy_c(h->state, "released", sizeof(h->state));
	h->action[0] = '\0';
	h->tries++;
	h->next_try = (long long)now;	/* the time of release: released records are pruned after a while */
	h->notified |= tell ? HELD_NOTIFIED_RELEASED : 0;
	st = keystore_held_update_claimed(env->ks, h, claimed_until, err);
	if (st == CABLES_ERR_NOTFOUND) {
		/* The milter held the copy again meanwhile: it waits on, and its sender is told nothing. */
		keep_held_notice(env, h);
		strlcpy_c(h->state, "held", sizeof(h->state));
		snprintf(res->detail + strlen(res->detail), sizeof(res->detail) - strlen(res->detail),
		    "; held again by the milter");
		return CABLES_OK;
	}
	if (st != CABLES_OK)
		return st;
	if (tell && notice_released(env, h, err) != CABLES_OK) {
		res->notice_failed = true;
		snprintf(res->detail + strlen(res->detail), sizeof(res->detail) - strlen(res->detail),
		    "; the release notice could not be sent: %s", err != NULL ? err->msg : "?");
	}
	return CABLES_OK;
}

/*
 * Take id for this look (keystore_held_claim): CABLES_OK with res->outcome
 * HELD_TAKEN when another process has it or it is not due; a record not
 * held is CABLES_ERR_NOTFOUND, as before the claim.
 */
static cables_status
claim(const struct held_env *env, const char *id, time_t now, int which, struct held_result *res,
    struct cables_err *err)
{
	struct held_record h;
	cables_status st;
	bool claimed;

	if ((st = keystore_held_claim(env->ks, id, now, which, now + HELD_CLAIM_TIME, &claimed, err)) != CABLES_OK)
		return st;
	if (claimed)
		return CABLES_OK;
	if ((st = keystore_held_get(env->ks, id, false, &h, err)) != CABLES_OK)
		return st;
	if (strcmp(h.state, "held") != 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "message %s is not held (%s)", id, h.state);
	else if (which != HELD_DUE_ACTIONS && which != HELD_ANY && h.action[0] != '\0')
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "message %s is already handed to cables-milter to %s", id,
		    h.action);
	else {
		res->outcome = HELD_TAKEN;
		snprintf(res->detail, sizeof(res->detail), "another process (cables-keyd, cables-keyctl held) is "
		    "looking at it, or it is not due; left alone");
	}
	held_record_release(&h);
	return st;
}

/*
 * Hand the claimed record h to the milter: action "release", "expire"
 * (HoldTime passed) or "return" (the administrator asked); ends the claim.
 */
static cables_status
hand_over(const struct held_env *env, struct held_record *h, const char *action, time_t now, struct cables_err *err)
{
	strlcpy_c(h->action, action, sizeof(h->action));
	h->next_try = (long long)now;
	return keystore_held_update(env->ks, h, err);
}

#define CLEAR_WHY "in the clear (held before schema 5, or written by cables-keyd): never sent, since cables-keyd " \
	"could have written it; see it with cables-keyctl held show, remove it with cables-keyctl held delete"

/*
 * The claimed record h is in the clear: nothing sends such a row (a row
 * keyd wrote looks the same as one held before schema 5); it waits, the
 * reason in its last error, until an administrator deletes it.
 */
static cables_status
clear_row(const struct held_env *env, struct held_record *h, time_t now, struct held_result *res,
    struct cables_err *err)
{
	res->outcome = HELD_WAITING;
	snprintf(res->detail, sizeof(res->detail), "%s", CLEAR_WHY);
	free(h->last_error);
	h->last_error = xstrdup(CLEAR_WHY);
	h->tries++;
	h->next_try = (long long)now + held_backoff(h->tries);
	return keystore_held_update(env->ks, h, err);
}

static cables_status
try_claimed(const struct held_env *env, const char *id, time_t now, int which, struct held_result *res,
    struct cables_err *err)
{
	struct held_record h;
	struct buf still, shown;
	struct cables_err nerr;
	cables_status st;
	size_t missing;

	memset(res, 0, sizeof(*res));
	if ((st = claim(env, id, now, which, res, err)) != CABLES_OK || res->outcome == HELD_TAKEN)
		return st;
	if ((st = keystore_held_get(env->ks, id, false, &h, err)) != CABLES_OK)
		return st;
	if ((long long)now >= h.held_at + env->hold_time) {
		if (!h.sealed)
			st = clear_row(env, &h, now, res, err);
		else {
			res->outcome = HELD_TO_RETURN;
			snprintf(res->detail, sizeof(res->detail), "HoldTime passed: cables-milter returns it to %s",
			    h.sender);
			st = hand_over(env, &h, "expire", now, err);
		}
		held_record_release(&h);
		return st;
	}
	if (h.notify && !(h.notified & HELD_NOTIFIED_HELD)) {
		if (notice_held(env, &h, &nerr) == CABLES_OK)
			h.notified |= HELD_NOTIFIED_HELD;
		else
			res->notice_failed = true;
	}
	buf_init(&still);
	buf_init(&shown);
	missing = still_waiting(env, &h, &still, &shown);
	if (missing == 0 && !h.sealed) {
		st = clear_row(env, &h, now, res, err);
	} else if (missing == 0) {
		res->outcome = HELD_TO_RELEASE;
		snprintf(res->detail, sizeof(res->detail), "every key found: cables-milter resubmits it");
		st = hand_over(env, &h, "release", now, err);
	} else {
		res->outcome = HELD_WAITING;
		snprintf(res->detail, sizeof(res->detail), "still waiting: %s", shown.data);
		free(h.waiting);
		h.waiting = xstrdup(still.data);
		h.tries++;
		h.next_try = (long long)now + held_backoff(h.tries);
		st = keystore_held_update(env->ks, &h, err);
	}
	if (res->notice_failed && !(h.notified & HELD_NOTIFIED_HELD)) {
		size_t len = strlen(res->detail);

		snprintf(res->detail + len, sizeof(res->detail) - len, "; the held notice could not be sent: %s",
		    nerr.msg);
	}
	buf_release(&still);
	buf_release(&shown);
	held_record_release(&h);
	return st;
}

cables_status
held_try(const struct held_env *env, const char *id, time_t now, struct held_result *res, struct cables_err *err)
{
	return try_claimed(env, id, now, HELD_ALL, res, err);
}

cables_status
held_try_due(const struct held_env *env, const char *id, time_t now, struct held_result *res,
    struct cables_err *err)
{
	return try_claimed(env, id, now, HELD_DUE, res, err);
}

cables_status
held_return(const struct held_env *env, const char *id, struct held_result *res, struct cables_err *err)
{
	struct held_record h;
	time_t now = time(NULL);
	cables_status st;

	memset(res, 0, sizeof(*res));
	/* With or without an action: a release the milter cannot make (MailCommand broken) may still be returned. */
	if ((st = claim(env, id, now, HELD_ANY, res, err)) != CABLES_OK || res->outcome == HELD_TAKEN)
		return st;
	if ((st = keystore_held_get(env->ks, id, false, &h, err)) != CABLES_OK)
		return st;
	if (!h.sealed)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "message %s is %s", id, CLEAR_WHY);
	else {
		res->outcome = HELD_TO_RETURN;
		snprintf(res->detail, sizeof(res->detail), "cables-milter returns it to %s", h.sender);
		st = hand_over(env, &h, "return", now, err);
	}
	held_record_release(&h);
	return st;
}

cables_status
held_act_due(const struct held_env *env, const char *id, time_t now, struct held_result *res,
    struct cables_err *err)
{
	struct held_record h;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	time_t claimed_until = now + HELD_CLAIM_TIME;
	struct cables_err oerr;
	char why[CABLES_ERR_MAX];
	cables_status st;

	memset(res, 0, sizeof(*res));
	if ((st = claim(env, id, now, HELD_DUE_ACTIONS, res, err)) != CABLES_OK || res->outcome == HELD_TAKEN)
		return st;
	/* Read only when the store says it takes no more than max_len: a row keyd made huge must not take the milter down. */
	if ((st = keystore_held_get_bounded(env->ks, id, env->max_len, &h, err)) != CABLES_OK)
		return st;
	if (!h.sealed || env->open_key == NULL) {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "%s", !h.sealed ? CLEAR_WHY : "not sealed for this process");
	} else if (h.message == NULL) {
		res->outcome = HELD_FAILED;
		snprintf(res->detail, sizeof(res->detail), "the stored message takes %zu bytes, more than a message "
		    "this milter takes (MaxMessageSize): not read", h.stored_len);
	} else {
		if (held_unseal(env->open_key, env->open_arg, &h, &plain, &plain_len, &oerr) != CABLES_OK) {
			res->outcome = HELD_FAILED;
			snprintf(res->detail, sizeof(res->detail), "cannot open the held message: %s", oerr.msg);
		} else if (strcmp(h.action, "release") == 0) {
			st = release(env, &h, plain, plain_len, now, claimed_until, res, err);
		} else if (strcmp(h.action, "expire") == 0 || strcmp(h.action, "return") == 0) {
			strlcpy_c(why, h.action[0] == 'e' ? "no encryption key was found within HoldTime" :
			    "returned by the administrator", sizeof(why));
			st = do_return(env, &h, plain, plain_len, why, claimed_until, res, err);
			if (st != CABLES_OK && res->outcome == HELD_FAILED)
				st = CABLES_OK;	/* tried again later */
		} else {
			res->outcome = HELD_FAILED;
			snprintf(res->detail, sizeof(res->detail), "unknown action '%.16s'", h.action);
		}
		if (plain != NULL)
			seal_free_secret(plain, plain_len);
	}
	if (st == CABLES_OK && res->outcome == HELD_FAILED) {
		/*
		 * The action stays: tried again after the backoff, under a new
		 * claim.  A release still not made when HoldTime has passed
		 * becomes a return, as keyd would have made it: the sender was
		 * told it comes back by then.
		 */
		free(h.last_error);
		h.last_error = xstrdup(res->detail);
		h.tries++;
		h.next_try = (long long)now + held_backoff(h.tries);
		if (strcmp(h.action, "release") == 0 && (long long)now >= h.held_at + env->hold_time)
			strlcpy_c(h.action, "expire", sizeof(h.action));
		st = keystore_held_update_claimed(env->ks, &h, claimed_until, err);
		if (st == CABLES_ERR_NOTFOUND)
			st = CABLES_OK;	/* a copy got through and was held again, or another process took it */
	}
	held_record_release(&h);
	return st;
}
