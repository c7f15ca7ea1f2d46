/*
 * khclient - the milter's connection to cables-keyholder: the real
 * kh_transport behind khkey.h.
 *
 * A call takes a kept connection, or opens one when none is free, and gives
 * it back after a whole answer; up to KHCLIENT_IDLE_MAX are kept.  They are
 * shared by all threads, not one per thread: libmilter's worker threads come
 * and go (about one per SMTP session under load), and a connection per
 * thread made the keyholder accept a connection and start a thread for most
 * messages.  A request that fails on a kept connection (the keyholder
 * restarted, or closed it after KeyholderIdleTimeout or to make room) is
 * sent once more on a fresh one, which is safe because every operation can
 * be repeated.  When the
 * keyholder cannot be reached the call fails with CABLES_ERR_IO at once, and
 * the next call tries again, so the milter recovers by itself when it is
 * back.  A reply that breaks the protocol closes the connection
 * (CABLES_ERR_IO too).  Each reply is awaited at most KHCLIENT_TIMEOUT_MS.
 *
 * khclient_new() keeps a copy of path; the client must outlive the keys made
 * with its transport.  Not reloadable: the milter keeps the KeyholderSocket
 * it started with.
 */
#ifndef CABLES_KHCLIENT_H
#define CABLES_KHCLIENT_H

#include <stdbool.h>

#include "khkey.h"

#define KHCLIENT_TIMEOUT_MS 10000
#define KHCLIENT_IDLE_MAX 16	/* connections kept (KeyholderClients defaults to 128) */

struct khclient;

struct khclient *khclient_new(const char *path);
void khclient_free(struct khclient *c);
const struct kh_transport *khclient_transport(struct khclient *c);

/*
 * Keyholder outage, its own error class: whether, on this thread since
 * khclient_outage_clear(), a keyholder call could not be made (no
 * connection, no answer, a broken reply) or was answered "unavailable" or
 * "rate-limited".  A message that needed a private-key operation then waits
 * (4xx) whatever On-InternalError says: "accept" would pass it undecrypted or
 * unsigned, "reject" would bounce mail a restart of the keyholder would have
 * delivered.  The milter clears it when a callback that may use the keyholder
 * begins (libmilter runs one callback on one thread).
 */
void khclient_outage_clear(void);
bool khclient_outage(void);

#endif
