/*
 * inbound - mail for local recipients only: decrypt S/MIME and OpenPGP for
 * them and verify signatures.  Fields claiming to be this server's verdict
 * (X-Cables, our Authentication-Results) are removed before this runs, on
 * every message (dispatch.c).  Decryption is reported in an X-Cables field,
 * signatures in an Authentication-Results field with our AuthservID.  No
 * libmilter here (see mta.h).
 *
 * Plaintext is handed only to recipients the sender encrypted to: the
 * message is decrypted when every recipient of the transaction is local and
 * each of them has a key that a RecipientInfo names; otherwise it passes
 * encrypted with an X-Cables field saying why.  A message that cannot be
 * decrypted (no key, an unsupported algorithm, corrupt data) passes
 * unchanged, with the reason in the X-Cables field and the log.  The
 * decrypted entity replaces the content byte for byte; signatures are
 * checked but left in place, so the recipient's client can check them too.
 */
#ifndef CABLES_INBOUND_H
#define CABLES_INBOUND_H

#include "keys.h"
#include "message.h"
#include "mta.h"
#include "outcome.h"

void inbound_plan(struct message *m, const struct milter_env *env, struct outcome *out);
void inbound_finish(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out);

#endif
