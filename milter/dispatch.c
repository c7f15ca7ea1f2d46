/* dispatch - the decisions at end of header and end of message; see dispatch.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "copies.h"
#include "dispatch.h"
#include "inbound.h"
#include "outbound.h"

static bool
has_remote_recipient(const struct message *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (!m->rcpts[i].local)
			return true;
	return false;
}

void
dispatch_eoh(struct message *m, const struct milter_env *env, struct outcome *out)
{
	/* Mail for local recipients only is inbound; anything else is outbound. */
	if (m->nrcpts > 0 && !has_remote_recipient(m))
		inbound_plan(m, env, out);
	else
		outbound_plan(m, env, out);
	if (out->verdict == VERDICT_CONTINUE)
		return;
	if (m->outer[OUTER_MARKER] > 0 || message_forged_fields(m) > 0) {
		/* The marker is checked (or removed), forged fields removed, at end of message; the decision waits. */
		m->early = *out;
		m->have_early = true;
		outcome_set(out, VERDICT_CONTINUE, "continue", "decided at end of header, applied at end of message");
	}
}

/*
 * Remove what claims to be ours and came with the message (every X-Cables
 * field, our Authentication-Results fields), last first so indexes stay
 * valid; the note says so for the log.  -1 if the MTA refuses.
 */
static int
strip_forged(struct message *m, const struct mta *mta, char *note, size_t len)
{
	note[0] = '\0';
	for (unsigned int i = m->outer[OUTER_X_CABLES]; i > 0; i--)
		if (mta->chgheader(mta->ctx, "X-Cables", (int)i, NULL) != 0)
			return -1;
	/* Our own resubmission's field too: it was read at end of header (hold.h), and goes no further. */
	for (unsigned int i = m->outer[OUTER_RELEASE]; i > 0; i--)
		if (mta->chgheader(mta->ctx, "X-Cables-Release", (int)i, NULL) != 0)
			return -1;
	for (size_t i = m->nauthres_ours; i > 0; i--)
		if (mta->chgheader(mta->ctx, "Authentication-Results", (int)m->authres_ours[i - 1], NULL) != 0)
			return -1;
	if (m->outer[OUTER_X_CABLES] + m->nauthres_ours > 0)
		snprintf(note, len, "; forged fields removed: %u X-Cables, %zu Authentication-Results (%s)",
		    m->outer[OUTER_X_CABLES], m->nauthres_ours, m->authserv_id);
	return 0;
}

void
dispatch_eom(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out)
{
	char forged[160];
	size_t len;

	if (copy_marker_check(m, env, mta, out))
		return;
	/* A copy of ours passed above; anything else loses our fields before anything is added. */
	if (strip_forged(m, mta, forged, sizeof(forged)) != 0) {
		outcome_internal_error(out, m->on_internal_error, false, m->has_require,
		    "the MTA refused a header change");
		return;
	}
	if (m->have_early)
		*out = m->early;
	else if (m->plan == PLAN_INBOUND)
		inbound_finish(m, env, mta, out);
	else
		outbound_finish(m, env, mta, out);
	if (m->marker_note[0] != '\0') {
		len = strlen(out->detail);
		snprintf(out->detail + len, sizeof(out->detail) - len, "%s", m->marker_note);
		/* The removal is a change the MTA must keep. */
		if (out->verdict == VERDICT_ACCEPT)
			out->verdict = VERDICT_MODIFIED;
	}
	if (forged[0] != '\0' && (out->verdict == VERDICT_ACCEPT || out->verdict == VERDICT_MODIFIED)) {
		len = strlen(out->detail);
		snprintf(out->detail + len, sizeof(out->detail) - len, "%s", forged);
		out->verdict = VERDICT_MODIFIED;
	}
}
