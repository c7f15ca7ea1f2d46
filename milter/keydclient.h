/*
 * keydclient - the milter asking cables-keyd about recipients the key store
 * has no key for: lookup requests of at most KEYD_BATCH_MAX addresses each,
 * asked side by side on connections of their own, all bounded by one
 * deadline (timeout_ms), so any number of recipients waits no longer than
 * one.  keyd stores what it finds, so the caller looks in the store again
 * afterwards.  Not reaching keyd for any batch (no socket, refused,
 * timeout, a reply that does not parse) is an error with the reason; when
 * only some batches fail, their addresses are answered "tempfail" (why says
 * why) and the others as keyd said.  keyd answering "tempfail" or "reject"
 * (a key change On-KeyChange holds back) for an address is that address's
 * answer.
 *
 * found (may be NULL) gets, per address, the fingerprints of the keys keyd
 * answered with (or its reason when there were none): a key the store holds from DNS may be used only when keyd
 * has just confirmed it (its TTL, its trust), never from the store alone.
 */
#ifndef CABLES_KEYDCLIENT_H
#define CABLES_KEYDCLIENT_H

#include <stddef.h>

#include "keydproto.h"
#include "status.h"

#define KEYD_FOUND_MAX 8

struct keyd_found {
	char fpr[KEYD_FOUND_MAX][65];
	size_t n;
	char reason[192];	/* keyd's reason when it found none, or "" */
	enum keyd_encrypting encrypting;	/* no key, and the domain must not get plaintext (keydproto.h) */
	long long since;	/* KEYD_ENCRYPTING_REMEMBERED: since when */
};

cables_status keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_outcome *answers, struct keyd_found *found, char *why, size_t why_len, struct cables_err *err);

/*
 * At RCPT time: ask keyd what it holds about addr (request=check,
 * keydproto.h), within timeout_ms (keep it short: the SMTP client waits).
 * keyd answers from memory and its store at once and never starts a
 * lookup.  Not reaching keyd, no answer in time, or a reply that does not
 * parse is an error with the reason; the caller then goes on as if keyd
 * had said "lookup" (the end of the message decides, as without the check).
 */
cables_status keyd_check_address(const char *socket_path, const char *addr, unsigned long timeout_ms,
    struct keyd_check *out, struct cables_err *err);

#endif
