/*
 * authres - Authentication-Results header fields (RFC 8601): whose a
 * received field claims to be, and values written so that no input can add
 * a result of its own.
 *
 * The reader is bounded and never allocates: comments (nested, with
 * quoted-pairs), quoted strings and folding are handled; anything it cannot
 * read is reported as a syntax error, and callers treat such a field as one
 * that may claim to be theirs (removing it is the safe side).  The writers
 * append to a caller's buffer.
 */
#ifndef CABLES_AUTHRES_H
#define CABLES_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "util.h"

#define AUTHRES_ID_MAX 256

/*
 * The authserv-id of a field value (value[0..len), unfolded or not) into
 * id (NUL-terminated, quoted-pairs undone).  CABLES_ERR_SYNTAX when the
 * value does not start with a token or quoted-string followed by CFWS, ';'
 * or the end; CABLES_ERR_TOOBIG when the id does not fit in idlen bytes.
 */
cables_status authres_servid(const char *value, size_t len, char *id, size_t idlen, struct cables_err *err);

/*
 * Does a received field value claim authserv-id ours?  Compared without
 * case and without one final dot; a value that cannot be read claims it.
 */
bool authres_claims(const char *value, size_t len, const char *ours);

/* Is s a non-empty RFC 2045 token (what an authserv-id may be unquoted)? */
bool authres_is_token(const char *s);

/* Append v as a quoted-string: '"' and '\' escaped, control characters as '?'. */
void authres_quote(struct buf *out, const char *v);

/* Append v as a token when it is one, else as a quoted-string. */
void authres_value(struct buf *out, const char *v);

#endif
