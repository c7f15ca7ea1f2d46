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
#include "khkey.h"
#include "util.h"

#include <stdint.h>
#include <openssl/x509.h>

/*
 * Set what the callbacks use (before smfi_main): configuration (owned by
 * the milter from now on), key store, trust anchors for signatures (NULL:
 * none; owned too).  The store key (KeyStoreKey) is read when first needed
 * and, while it is missing or unreadable, tried again at most every 10
 * seconds, so the first private key can be created while the milter runs.
 */
void milter_setup(struct config *cfg, struct keystore *ks, X509_STORE *anchors);

/* Read (or create) ReinjectKey; done as root, before privileges are dropped. */
void milter_load_reinject_key(const struct config *cfg);

/*
 * Load the configuration file again (on SIGUSR1).  A configuration that
 * does not load or check keeps the old one in force, and says why; a good
 * one applies to every message that starts after it, while messages in
 * flight finish with the one they started with.  Settings that only a
 * restart can change (Socket, KeyStore, LogFile, User, ...) are reported.
 */
void milter_reload(void);

/* The counters (counters.h) as Prometheus text: the metrics server's render function (arg unused). */
void milter_render_metrics(struct buf *out, void *arg);

/* The configuration in force, kept until milter_config_put(ref) (a reload may replace it meanwhile). */
const struct config *milter_config_get(void **ref);
void milter_config_put(void *ref);

/* The keyholder's transport (khclient), or NULL without KeyholderSocket. */
const struct kh_transport *milter_keyholder(void);

/* Release everything (wiping the store key), before exit. */
void milter_teardown(void);

extern struct smfiDesc milter_desc;

#endif
