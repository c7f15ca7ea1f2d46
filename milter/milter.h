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

/* Set the configuration and key store the callbacks use (before smfi_main). */
void milter_setup(const struct config *cfg, struct keystore *ks);

extern struct smfiDesc milter_desc;

#endif
