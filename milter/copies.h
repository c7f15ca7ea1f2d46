/*
 * copies - split delivery shared by the outbound and inbound paths: a copy
 * of the message for some of its recipients, re-injected through
 * ReinjectTo with the marker, those recipients then removed from the
 * transaction; and, at end of message, the check of a marker the message
 * arrived with.
 *
 * Order matters for "never lost": the caller changes the transaction in
 * place first (nothing is committed until the milter answers), then queues
 * every copy, then removes the copies' recipients.  A failure before the
 * last copy is queued temp-fails the whole transaction, so a retry may
 * duplicate a copy but nothing is lost.
 */
#ifndef CABLES_COPIES_H
#define CABLES_COPIES_H

#include <stdbool.h>
#include <stddef.h>

#include "entity.h"
#include "keys.h"
#include "message.h"
#include "mta.h"
#include "outcome.h"
#include "util.h"

/*
 * Queue a copy for recipients members[0..n) of m: first holds the fields to
 * put first (the X-Cables result; the marker goes last in the header), content the
 * copy's content fields (NULL: the original ones), body the copy's body;
 * headers the copy's outer header section ("Name:value" CRLF fields; NULL:
 * the message's as received).
 * *qid gets the MTA's queue ID for it ("" when it did not say).
 */
cables_status copy_send(const struct message *m, const struct milter_env *env, const size_t *members, size_t n,
    const struct spool *headers, struct buf *first, const struct buf *content, const struct entity_src *body, char *qid, size_t qlen,
    struct cables_err *err);

/* Remove recipients members[0..n) from the transaction; -1 if the MTA refuses. */
int copy_remove(const struct message *m, const struct mta *mta, const size_t *members, size_t n);

/* Append "what to a, b as QID" (qid NULL: no queue ID) to a description. */
void copy_describe(const struct message *m, const char *what, const size_t *members, size_t n, const char *qid,
    struct buf *b);

/*
 * At end of message, for a message that arrived with a marker field: true
 * (and *out set) when it is a copy this milter made, which passes as it is,
 * or when removing a marker that does not verify failed; false when the
 * marker was removed and the message is to be handled like any other
 * (m->marker_note says so for the log line).
 */
bool copy_marker_check(struct message *m, const struct milter_env *env, const struct mta *mta,
    struct outcome *out);

#endif
