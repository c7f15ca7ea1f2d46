/*
 * keydclient - the milter asking cables-keyd about recipients the key store
 * has no key for: one lookup request for all of them, bounded by a
 * deadline.  keyd stores what it finds, so the caller looks in the store
 * again afterwards.  Not reaching keyd (no socket, refused, timeout, a
 * reply that does not parse) is an error with the reason; keyd answering
 * "tempfail" for an address is that address's answer.
 */
#ifndef CABLES_KEYDCLIENT_H
#define CABLES_KEYDCLIENT_H

#include <stddef.h>

#include "status.h"

enum keyd_answer { KEYD_ANSWER_NONE, KEYD_ANSWER_FOUND, KEYD_ANSWER_TEMPFAIL };

cables_status keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_answer *answers, char *why, size_t why_len, struct cables_err *err);

#endif
