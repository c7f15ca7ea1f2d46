/*
 * reinject - copies of a message for recipients that need different
 * treatment, handed back to the MTA over SMTP (ReinjectTo: an smtpd that
 * does not run this milter), and the marker that lets the milter recognise
 * its own copies.
 *
 * A copy is the original header fields (minus those the copy replaces,
 * minus X-Cables fields and the Authentication-Results fields claiming our
 * authserv-id), fields put first (an inbound copy's X-Cables result, the
 * marker), the copy's content header fields, and a body given as pieces
 * (entity.h).  It is sent with the original envelope sender and ESMTP
 * parameters the server supports; success means the server answered 250
 * to the end of DATA, i.e. it has queued the copy.
 *
 * The marker "X-Cables-Reinjected: v1 t=T n=NONCE h=HMAC" binds a time, a
 * nonce, the copy's recipients and the SHA-256 of its body under a local
 * key: it cannot be made without the key, and one copied onto other
 * content or other recipients does not verify.  It is accepted for an
 * hour.  The SMTP client only connects to numeric addresses: no name is
 * ever resolved.
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
#define REINJECT_WINDOW 3600

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
};

/* Is spec a usable ReinjectTo ("inet:PORT@ADDRESS", "inet6:PORT@ADDRESS")? */
bool reinject_target_valid(const char *spec);

/*
 * Send the copy to spec; *queue_id gets what the server said it queued the
 * copy as (may be empty).  Timeouts are timeout seconds per step.
 */
cables_status reinject_send(const char *spec, const struct reinject_copy *copy, int timeout,
    char *queue_id, size_t qlen, struct cables_err *err);

/* The marker field's value for a copy with these recipients and body. */
cables_status reinject_marker(const uint8_t key[REINJECT_KEY_LEN], time_t now,
    const struct reinject_rcpt *rcpts, size_t nrcpts, const struct entity_src *body,
    char *out, size_t len, struct cables_err *err);

/* Does value (a marker field) verify for these recipients and this body, at time now? */
bool reinject_marker_verify(const uint8_t key[REINJECT_KEY_LEN], const char *value, time_t now,
    const char *const *rcpts, size_t nrcpts, const struct spool *body);

#endif
