/*
 * milter - the libmilter adapter: callbacks that keep per-connection and
 * per-message bookkeeping and call the outbound module, and the one place
 * where outcomes become SMFIS_* codes, SMTP replies and log lines.
 */
#ifndef CABLES_MILTER_H
#define CABLES_MILTER_H

#include <libmilter/mfapi.h>

#include "config.h"
#include "keystore.h"

#include <stdint.h>
#include <openssl/x509.h>

/*
 * Set what the callbacks use (before smfi_main): configuration, key store,
 * the store key that unseals private keys (NULL: unavailable), trust
 * anchors for signatures (NULL: none).
 */
void milter_setup(const struct config *cfg, struct keystore *ks, const uint8_t *seal_key,
    X509_STORE *anchors);

extern struct smfiDesc milter_desc;

#endif
