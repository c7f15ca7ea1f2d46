/*
 * khsign - keyd's exchange signatures, made by cables-keyholder: keyd does
 * not read ExchangeKey.  Each signature is one request on a connection of
 * its own (exchange answers and requests are rare next to mail): the digest
 * (lib/xsign.h) and the domain go to the keyholder, which checks that the
 * domain is local and that the peer is keyd's user, builds the signed
 * message itself and answers the signature and the key's public half.
 * The same way keyd asks which epoch key of a local user it may serve.
 *
 * The signer keeps a copy of path; x_signer.arg points into it, so it must
 * outlive the signer it fills.
 */
#ifndef CABLES_KHSIGN_H
#define CABLES_KHSIGN_H

#include "exchange.h"

#define KHSIGN_TIMEOUT_MS 10000

struct khsign;

struct khsign *khsign_new(const char *path);
void khsign_free(struct khsign *k);
/* The x_signer that asks the keyholder at k's path. */
struct x_signer khsign_signer(struct khsign *k);
/* A keyd_epoch_fn (lookup.h) asking the keyholder (KH_OP_EPOCH_CURRENT); arg is a struct khsign. */
cables_status khsign_epoch(void *arg, const char *addr, const char *format, uint8_t digest[32], bool *found, struct cables_err *err);
/* A keyd_vouch_fn (lookup.h) asking the keyholder (KH_OP_VOUCH); arg is a struct khsign. */
cables_status khsign_vouch(void *arg, const char *addr, uint8_t (*digests)[32], size_t *n, struct cables_err *err);

#endif
