/*
 * release - the milter's side of held messages (doc/hold.md): a thread
 * that, once a second, takes the held records cables-keyd (or
 * cables-keyctl held) handed over, opens each sealed message with the
 * keyholder's key for it (heldseal.h) and resubmits it through MailCommand
 * (it passes this milter again, which encrypts it or holds it again) or
 * returns it to its sender (held_act_due).  The milter does this, not keyd:
 * it already sees every message in the clear and talks to no network
 * peer, so sealing held messages for it takes them out of reach of the
 * process that faces DNS, peers and WKD without giving them to anyone new.
 *
 * The thread has a key store connection of its own.  Several milters on
 * one store (one per MTA) share the work: a record is claimed before it is
 * acted on (keystore_held_claim).
 */
#ifndef CABLES_RELEASE_H
#define CABLES_RELEASE_H

#include "config.h"
#include "khkey.h"
#include "status.h"

/* Start the thread; cfg's KeyStore is opened for it here. */
cables_status release_start(const struct config *cfg, const struct kh_transport *keyholder, struct cables_err *err);
void release_stop(void);

#endif
