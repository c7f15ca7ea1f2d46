/* copies - split delivery shared by outbound and inbound; see copies.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copies.h"
#include "gate.h"
#include "reinject.h"

/* Seconds per SMTP step of a re-injection (connect, each command, the data). */
#define COPY_TIMEOUT 60

cables_status
copy_send(const struct message *m, const struct milter_env *env, const size_t *members, size_t n,
    const struct spool *headers, struct buf *first, const struct buf *content, const struct entity_src *body, char *qid, size_t qlen,
    struct cables_err *err)
{
	struct reinject_rcpt *rcpts = xcalloc(n + 1, sizeof(*rcpts));
	struct reinject_copy copy;
	cables_status st;

	qid[0] = '\0';
	if (env->reinject_key == NULL) {
		free(rcpts);
		return cables_fail(err, CABLES_ERR_ARG, "split delivery is not available");
	}
	for (size_t k = 0; k < n; k++) {
		rcpts[k].addr = m->rcpts[members[k]].addr;
		rcpts[k].esmtp = m->rcpts[members[k]].esmtp;
	}
	/* reinject_send adds the marker, last in the header block it covers. */
	memset(&copy, 0, sizeof(copy));
	copy.sender = m->sender;
	copy.mail_esmtp = m->mail_esmtp;
	copy.rcpts = rcpts;
	copy.nrcpts = n;
	copy.headers = headers != NULL ? headers : m->headers;
	copy.drop_content_fields = content != NULL;
	copy.drop_authres = m->authres_ours;
	copy.ndrop_authres = m->nauthres_ours;
	copy.first = first;
	copy.content = content;
	copy.body = body;
	copy.marker_key = env->reinject_key;
	copy.now = env->now;
	st = reinject_send(env->cfg->reinject_to, &copy, COPY_TIMEOUT, qid, qlen, err);
	free(rcpts);
	return st;
}

int
copy_remove(const struct message *m, const struct mta *mta, const size_t *members, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (mta->delrcpt(mta->ctx, m->rcpts[members[k]].arg) != 0)
			return -1;
	return 0;
}

void
copy_describe(const struct message *m, const char *what, const size_t *members, size_t n, const char *qid,
    struct buf *b)
{
	buf_printf(b, "%s%s to", b->len > 0 ? ", " : "", what);
	for (size_t k = 0; k < n; k++)
		buf_printf(b, "%s %s", k > 0 ? "," : "", m->rcpts[members[k]].addr);
	if (qid != NULL)
		buf_printf(b, " as %s", qid[0] != '\0' ? qid : "(unknown)");
}

bool
copy_marker_check(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out)
{
	const char **rcpts;
	const char *why;
	bool ok = false;

	if (m->outer[OUTER_MARKER] == 0)
		return false;
	if (m->outer[OUTER_MARKER] > 1)
		why = "more than one marker";
	else if (env->marker_key == NULL)
		why = "no ReinjectKey to check it";
	else if (m->body_status != CABLES_OK)
		why = "body not available";
	else {
		rcpts = xcalloc(m->nrcpts + 1, sizeof(*rcpts));
		for (size_t i = 0; i < m->nrcpts; i++)
			rcpts[i] = m->rcpts[i].addr;
		struct reinject_received r = { m->sender, rcpts, m->nrcpts, m->headers, m->body };
		struct reinject_stamp stamp;

		ok = reinject_marker_verify(env->marker_key, m->marker, env->now, REINJECT_WINDOW, &r, &stamp);
		free(rcpts);
		why = "it does not verify";
		/* A copy passes once: replayed, it is filtered like any other message. */
		if (ok && gate_remember(&stamp, REINJECT_WINDOW, env->now, &why) != GATE_NEW)
			ok = false;
	}
	if (ok) {
		outcome_set(out, VERDICT_ACCEPT, "pass", "a copy re-injected by Cables");
		outcome_classify(out, CLASS_OWN_COPY, NULL);
		return true;
	}
	/* Someone else's, replayed onto other content or recipients, or stale: gone, and no effect. */
	for (unsigned int i = m->outer[OUTER_MARKER]; i > 0; i--)
		if (mta->chgheader(mta->ctx, REINJECT_MARKER, (int)i, NULL) != 0) {
			outcome_internal_error(out, m->on_internal_error, false, m->has_require,
			    "the MTA refused a header change");
			return true;
		}
	snprintf(m->marker_note, sizeof(m->marker_note), "; %s field removed: %s", REINJECT_MARKER, why);
	return false;
}
