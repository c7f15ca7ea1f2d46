/*
 * dispatch - the milter's two decisions, at end of header and at end of
 * message, for a message that did not come in through the gate (gate.h).
 * milter.c calls them from mlfi_eoh and mlfi_eom; tests and fuzz targets
 * call them as the milter does, without an MTA.
 *
 * At end of header: mail for local recipients only is inbound, anything
 * else outbound (inbound_plan, outbound_plan).  A decision made there
 * waits for the end of message when the message arrived with a
 * re-injection marker or with fields that claim to be ours (m->early).
 *
 * At end of message: a marker is checked (copy_marker_check: a copy this
 * milter made passes as it is), forged X-Cables and Authentication-Results
 * fields are removed, then the decision that waited, or the inbound or
 * outbound finish, applies.
 */
#ifndef CABLES_DISPATCH_H
#define CABLES_DISPATCH_H

#include "keys.h"
#include "message.h"
#include "mta.h"
#include "outcome.h"

/* The decision at end of header; VERDICT_CONTINUE: the end of message decides. */
void dispatch_eoh(struct message *m, const struct milter_env *env, struct outcome *out);

/* The decision at end of message (after dispatch_eoh continued). */
void dispatch_eom(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out);

#endif
