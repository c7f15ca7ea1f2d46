/*
 * handler_impl - for handler.c and the body handlers (handler_*.c) only:
 * the part of a key that every handler's keys share.  Each handler's key
 * begins with it (struct cert_key in handler_smime.c, struct openpgp_key
 * in handler_pgp.c); the rest of milter/ sees struct handler_key only as
 * an opaque pointer (handler.h).
 */
#ifndef CABLES_HANDLER_IMPL_H
#define CABLES_HANDLER_IMPL_H

#include "handler.h"

struct handler_key {
	const struct body_handler *h;	/* the handler that found it, which frees it */
	bool epoch;			/* a recipient's epoch key (forward secrecy), not a long-term one */
	bool (*drop_epoch)(struct handler_key *k);	/* to the long-term key found with it; NULL: none */
};

#endif
