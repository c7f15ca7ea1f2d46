/*
 * outbound - the decision, signature and encryption for mail from a local
 * sender to remote recipients.  No libmilter here: the MTA is reached
 * through struct mta (mta.h).
 *
 * outbound_plan() runs at end of header and decides everything that does
 * not need the body (each remote recipient's policy and certificate, the
 * sender's signing key).  When nothing can change the message it returns
 * an accepting outcome, so the MTA need not send the body.
 * outbound_finish() runs at end of message: it checks the body (too large?
 * already encrypted? already signed?), then signs and/or encrypts and
 * rewrites the message, or refuses it.
 *
 * A recipient whose policy is require never receives plaintext; see
 * outcome.h for internal errors.  A signature is only ever made for a
 * trusted client (SMTP AUTH, InternalHosts, local submission).
 */
#ifndef CABLES_OUTBOUND_H
#define CABLES_OUTBOUND_H

#include "keys.h"
#include "message.h"
#include "mta.h"
#include "outcome.h"

void outbound_plan(struct message *m, const struct milter_env *env, struct outcome *out);
void outbound_finish(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out);

#endif
