/*
 * mime - what Cables needs to know about MIME, without changing a byte.
 *
 * - Header fields of an entity held in memory are iterated in place
 *   (mime_field_next); mime_split() separates a whole message into its
 *   outer header fields and its content header fields (Content-*,
 *   MIME-Version), each field copied byte for byte in its original order
 *   within its group, and the offset of the body (after the empty line).
 * - Content-Type values are parsed by GMime (RFC 2045/2231 parameters,
 *   quoting, comments); mime_init() must run once before threads start.
 * - mime_detect() tells whether content is already encrypted (S/MIME
 *   enveloped or authEnveloped, PGP/MIME, inline PGP), checking the body
 *   and not only the label: a text that merely says it is encrypted is
 *   treated as plaintext, so a mislabelled message is encrypted rather
 *   than leaked.
 *
 * Nothing here allocates except mime_type_parse (released by
 * mime_type_release) and mime_split (into caller-provided buffers).
 */
#ifndef CABLES_MIME_H
#define CABLES_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "spool.h"
#include "status.h"
#include "util.h"

void mime_init(void);

/* True for Content-* and MIME-Version (case-insensitive). */
bool mime_is_content_header(const char *name, size_t len);

/* One header field, as byte ranges inside the entity. */
struct mime_field {
	const char *name;	/* field name, no colon */
	size_t name_len;
	const char *value;	/* after the colon, up to (not including) the final line break */
	size_t value_len;
	const char *raw;	/* the whole field including its final line break */
	size_t raw_len;
};

/*
 * Next header field of p[0..len) starting at *off.  Returns 1 with f set
 * and *off advanced; 0 at the end of the header section with *off at the
 * first body byte (after the empty line, if any).  The header section ends
 * at an empty line, at a line that is neither a field nor a continuation,
 * or at the end of the data.
 */
int mime_field_next(const char *p, size_t len, size_t *off, struct mime_field *f);

/* Split a message into outer fields, content fields and the body offset. */
void mime_split(const char *msg, size_t len, struct buf *outer, struct buf *content,
    size_t *body_off);

/* A parsed Content-Type. Strings are lowercase except parameter values. */
struct mime_type {
	char *type;		/* "text" */
	char *subtype;		/* "plain" */
	char *smime_type;	/* smime-type parameter, or NULL */
	char *protocol;		/* protocol parameter, or NULL */
	char *name;		/* name parameter, or NULL */
	char *boundary;		/* boundary parameter, or NULL */
};

/* Parse a Content-Type value; NULL value means the RFC 2045 default text/plain. */
void mime_type_parse(const char *value, struct mime_type *t);
void mime_type_release(struct mime_type *t);
bool mime_type_is(const struct mime_type *t, const char *type, const char *subtype);

/* A parameter of a Content-Type value (malloc'd), or NULL. */
char *mime_type_param(const char *value, const char *param);

/*
 * The address (addr-spec) of the first mailbox in an address header
 * value, group members included (mime_addresses' first), or NULL: every
 * check of one From address reads the same one.
 */
char *mime_first_address(const char *value);

/* Every mailbox address in an address list (group members included); free each and the array. */
size_t mime_addresses(const char *value, char ***out);

/*
 * An address list as this parser read it, written back in one form
 * (display names RFC 2047-encoded where needed, addresses in angle
 * brackets): what is shown is then what was parsed.  NULL when the value
 * holds no mailbox.  Free it.
 */
char *mime_addresses_canonical(const char *value);

enum mime_crypto {
	MIME_PLAIN,			/* not encrypted (includes signed-only) */
	MIME_SMIME_ENVELOPED,		/* CMS EnvelopedData */
	MIME_SMIME_AUTHENVELOPED,	/* CMS AuthEnvelopedData */
	MIME_PGP_MIME,			/* RFC 3156 multipart/encrypted */
	MIME_PGP_INLINE,		/* text/plain that is one armored PGP MESSAGE */
};

const char *mime_crypto_name(enum mime_crypto c);

/* Does a Content-Transfer-Encoding value (NULL when absent) say base64? */
bool mime_cte_is_base64(const char *cte);

/*
 * Classify content from its Content-Type and Content-Transfer-Encoding
 * values (NULL when absent) and its body.  I/O errors reading the body
 * are returned; the classification is then MIME_PLAIN.
 */
cables_status mime_detect(const char *content_type, const char *cte,
    const struct spool *body, enum mime_crypto *out, struct cables_err *err);

/*
 * The two parts of a multipart/signed body in [from, to) of sp (to < 0:
 * the end): part k is [start[k], end[k]), the line break before each
 * delimiter belonging to the delimiter (RFC 2046), so part 0 is exactly the
 * signed bytes.  Anything but two parts closed by the boundary is
 * CABLES_ERR_SYNTAX.
 */
cables_status mime_signed_parts(const struct spool *sp, off_t from, off_t to, const char *boundary, off_t start[2],
    off_t end[2], struct cables_err *err);

/* The same, and for PGP/MIME and inline PGP the byte range [armor[0], armor[1]) of the armored message. */
cables_status mime_detect_armor(const char *content_type, const char *cte,
    const struct spool *body, enum mime_crypto *out, off_t armor[2], struct cables_err *err);

#endif
