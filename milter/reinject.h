/*
 * reinject - copies of a message for recipients that need different
 * treatment, handed back to the MTA over SMTP (ReinjectTo: an smtpd that
 * runs this milter in its verify-only mode, gate.h), and the marker that
 * lets the milter recognise its own copies.
 *
 * A copy is fields put first (an inbound copy's X-Cables result, or
 * none), the original header fields (minus those the copy replaces, minus
 * X-Cables fields, the Authentication-Results fields claiming our
 * authserv-id, and markers), the copy's content header fields, the marker,
 * and a body given as pieces
 * (entity.h).  It is sent with the original envelope sender and ESMTP
 * parameters the server supports; success means the server answered 250
 * to the end of DATA, i.e. it has queued the copy.
 *
 * The marker "X-Cables-Reinjected: v2 t=T n=NONCE h=HMAC", the last field
 * of a copy's header block, binds under a local key (ReinjectKey) a time,
 * a nonce, the envelope sender, the copy's recipients, the SHA-256 of its
 * header block (every field above the marker but Received, in a relaxed
 * form that folding does not change) and the SHA-256 of its body: it cannot
 * be made without the key, and one copied onto other content, other
 * headers, another sender or other recipients does not verify.  That it is
 * not used twice is the verifier's business (gate.h).  The SMTP client only
 * connects to numeric addresses: no name is ever resolved.
 */
#ifndef CABLES_REINJECT_H
#define CABLES_REINJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "entity.h"
#include "spool.h"
#include "status.h"
#include "util.h"

#define REINJECT_MARKER "X-Cables-Reinjected"
#define REINJECT_KEY_LEN 32
#define REINJECT_WINDOW 3600		/* seconds a marker is good for at a listener that filters */

struct reinject_rcpt {
	const char *addr;
	const char *esmtp;	/* NOTIFY= ORCPT=, or NULL */
};

struct reinject_copy {
	const char *sender;		/* "" for the null sender */
	const char *mail_esmtp;		/* RET= ENVID= BODY= SMTPUTF8, or NULL */
	const struct reinject_rcpt *rcpts;
	size_t nrcpts;
	const struct spool *headers;	/* original fields, "Name:value" CRLF */
	bool drop_content_fields;	/* the copy brings its own Content-* fields */
	const unsigned int *drop_authres;	/* 1-based indexes of Authentication-Results fields to leave out */
	size_t ndrop_authres;
	const struct buf *first;	/* fields to put before the original ones */
	const struct buf *content;	/* the copy's content fields (with drop_content_fields) */
	const struct entity_src *body;
	const uint8_t *marker_key;	/* the copy gets a marker made with it; NULL: none */
	time_t now;			/* the marker's time */
};

/* A message as it arrived, for a marker check. */
struct reinject_received {
	const char *sender;		/* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	const struct spool *headers;	/* every field, "Name:value" CRLF, as the milter spools them */
	const struct spool *body;
};

/* What identifies a marker that verified: its time and MAC (hex). */
struct reinject_stamp {
	long long t;
	char mac[65];
};

/* Is spec a usable ReinjectTo ("inet:PORT@ADDRESS", "inet6:PORT@ADDRESS")? */
bool reinject_target_valid(const char *spec);

/*
 * Send the copy to spec; *queue_id gets what the server said it queued the
 * copy as (may be empty).  Timeouts are timeout seconds per step.
 */
cables_status reinject_send(const char *spec, const struct reinject_copy *copy, int timeout,
    char *queue_id, size_t qlen, struct cables_err *err);

/* The marker value that message r, exactly as it is, would carry (tests; a message made here). */
cables_status reinject_marker_for(const uint8_t key[REINJECT_KEY_LEN], time_t now,
    const struct reinject_received *r, char *out, size_t len, struct cables_err *err);

/*
 * Does value (a marker field) verify for message r at time now, made at
 * most window seconds ago (and not more than 300 s ahead)?  *stamp (when
 * not NULL) gets its time and MAC when it does.
 */
bool reinject_marker_verify(const uint8_t key[REINJECT_KEY_LEN], const char *value, time_t now, long window,
    const struct reinject_received *r, struct reinject_stamp *stamp);

#endif
