/*
 * hp - header protection for encrypted mail (RFC 9788), both ways, as plans
 * the milter carries out: this module reads header sections held in memory
 * and says what to write, never touching a spool, a socket or the MTA.
 *
 * Outbound (hp_protect): from the message's header section it builds the
 * header fields that go inside the cryptographic payload (the protected
 * copies and one HP-Outer field per field left outside), the edits that
 * turn the outer header into what the Header Confidentiality Policy lets
 * the world see, and, when the policy hid something a reader needs, the
 * legacy display element (RFC 9788 section 5.2) for clients that do not
 * know header protection.  hp_content_type() marks the payload's
 * Content-Type with hp="cipher" (and hp-legacy-display="1").
 *
 * Inbound (hp_restore): from the decrypted payload's header section and the
 * outer header section it computes the edits that put the protected fields
 * back outside (RFC 9788 section 4: the protected header section is the
 * message's header section), the payload's content fields as the sender's
 * client wrote them (the parameters Cables added removed, byte for byte),
 * and whether the main body part starts with a legacy display element to
 * cut (hp_legacy_strip_text, hp_legacy_strip_html).  The older
 * protected-headers="v1" form (Thunderbird, Autocrypt) is read too.
 *
 * Trace and transport fields (Received, Return-Path, DKIM-Signature, ARC-*,
 * Authentication-Results, Delivered-To, Resent-*, X-Cables*, ...) are never
 * protected on the way out and never taken from inside on the way in.
 *
 * Input is the raw header section ("Name:value" lines, CRLF or LF, folded
 * values kept); HP_HEAD_MAX bounds it.  Values handed back are raw too:
 * what follows the colon, folds as CRLF + WSP (the milter's mta_value()
 * makes them what the MTA wants).  Everything returned is owned by the
 * result struct and freed by its _release function (safe after failure and
 * on a zeroed struct).  Errors are CABLES_ERR_SYNTAX (malformed or
 * dangerous field, named in err), CABLES_ERR_TOOBIG (HP_HEAD_MAX,
 * HP_FIELDS_MAX) and CABLES_ERR_ARG (content that already claims header
 * protection of its own).
 */
#ifndef CABLES_HP_H
#define CABLES_HP_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "status.h"
#include "util.h"

#define HP_HEAD_MAX (256 * 1024)	/* bytes of one header section */
#define HP_FIELDS_MAX 1000		/* fields of one header section */

/* The Header Confidentiality Policy (per policy entry: HeaderProtection). */
enum hp_policy {
	HP_POLICY_NONE,		/* hcp_no_confidentiality: fields protected (signed, encrypted copy), none hidden */
	HP_POLICY_BASELINE,	/* hcp_baseline: Subject becomes "[...]", Keywords and Comments removed */
	HP_POLICY_SHY,		/* hcp_shy: baseline, no display names in From/To/Cc, Date in UTC */
	HP_POLICY_OFF,		/* no header protection at all: the entity is encrypted as it is (not for hp_protect) */
};

const char *hp_policy_name(enum hp_policy p);
bool hp_policy_parse(const char *word, enum hp_policy *p);

/* How a header field is treated (by name, case-insensitive). */
enum hp_class {
	HP_CLASS_STRUCTURAL,	/* Content-*, MIME-Version: belong to the entity, not the message */
	HP_CLASS_TRANSPORT,	/* trace and transport: never protected, never taken from inside */
	HP_CLASS_USER,		/* addressing and threading: the protected section alone decides */
	HP_CLASS_OTHER,		/* protected; an inner copy replaces the outer one */
};

enum hp_class hp_field_class(const char *name, size_t len);

/*
 * One change to the outer header.  Apply a list in order: SET replaces the
 * index-th (1-based) field of that name, DELETE removes it (a name's
 * deletions come last-index first, so earlier indexes stay valid), ADD
 * appends a field.
 */
enum hp_op { HP_OP_SET, HP_OP_DELETE, HP_OP_ADD };

struct hp_edit {
	enum hp_op op;
	char *name;
	unsigned int index;	/* SET, DELETE */
	char *value;		/* SET, ADD: raw, starting with a space */
};

struct hp_edits {
	struct hp_edit *v;
	size_t n;
};

/* ---- outbound ---- */

struct hp_protect {
	struct buf inner;	/* protected fields, then HP-Outer fields, CRLF lines: put before the content fields */
	struct hp_edits outer;	/* what the outer header becomes */
	unsigned int hidden;	/* user-facing fields the policy changed or removed (0: no legacy display needed) */
	struct buf legacy;	/* "Name: value" CRLF lines of those fields, for the legacy display; empty if none */
};

/*
 * Plan header protection for a message whose header section (outer and
 * content fields, as received) is head[0..len).  Fields the policy hides
 * are listed in out->legacy in RFC 9787's user-facing order.
 */
cables_status hp_protect(const char *head, size_t len, enum hp_policy pol, struct hp_protect *out,
    struct cables_err *err);
void hp_protect_release(struct hp_protect *p);

/*
 * The payload's Content-Type value (raw, as in the message) marked
 * hp="cipher", and hp-legacy-display="1" when legacy is set: the
 * parameters are appended as "; name=value" so that hp_restore() can take
 * them off byte for byte.  NULL with CABLES_ERR_ARG when the value already
 * has an hp, hp-legacy-display or protected-headers parameter.  Free it.
 */
char *hp_content_type(const char *value, bool legacy, struct cables_err *err);

/* What kind of legacy display element a part takes, or carries. */
enum hp_legacy {
	HP_LEGACY_NONE,		/* none: not a text part, or an encoding we do not rewrite */
	HP_LEGACY_TEXT,		/* text/plain, identity transfer encoding */
	HP_LEGACY_HTML,		/* text/html, identity transfer encoding */
	HP_LEGACY_V1_PART,	/* inbound only: protected-headers="v1" display part, the first of a multipart/mixed */
	HP_LEGACY_NESTED,	/* inbound only: main body parts inside a multipart may carry one (hp_legacy_cuts) */
};

/*
 * Decide for one part from its Content-Type, Content-Transfer-Encoding and
 * Content-Disposition values (NULL when absent): text/plain or text/html
 * in 7bit, 8bit or binary, charset us-ascii or utf-8, not an attachment.
 * Base64 or quoted-printable text would need re-encoding, so it goes
 * without the element (the protected fields are there all the same).
 */
enum hp_legacy hp_legacy_kind(const char *content_type, const char *cte, const char *disposition);

/*
 * The legacy display element for fields (hp_protect's legacy lines):
 * for text, the lines and an empty line (RFC 9788 5.2.2); for HTML, a
 * div of class "header-protection-legacy-display" holding them, escaped
 * (5.2.3).  RFC 2047 encoded words are decoded when the part is UTF-8 in
 * 8bit or binary, else left as they are.  Appended to out.
 */
void hp_legacy_element(enum hp_legacy kind, const struct buf *fields, const char *content_type, const char *cte,
    struct buf *out);

/*
 * Where the legacy display element goes in a body whose first bytes are
 * body[0..len) (at least 64 KiB, or all of it), for content of this
 * Content-Type, Content-Transfer-Encoding and Content-Disposition (values,
 * NULL when absent), showing fields (hp_protect's legacy lines): byte
 * strings to insert, ascending by offset.  A single text part
 * (hp_legacy_kind) gets its element at the start, or after <body> for
 * HTML, and *top is set: its hp-legacy-display parameter goes on the
 * message's Content-Type (hp_content_type).  In a multipart, every main
 * body part (RFC 9787: the first part of a multipart/mixed or
 * multipart/related, every part of a multipart/alternative, down to three
 * multipart levels) that hp_legacy_kind accepts and that has its own
 * Content-Type gets two insertions: the parameter at the end of its Content-Type value, and
 * the element.  At most max (HP_INSERTS_MAX) insertions; returns how many.
 * Free them with hp_inserts_release.
 */
#define HP_INSERTS_MAX 8

struct hp_insert {
	size_t at;		/* offset in the body */
	struct buf text;	/* the bytes to insert there */
};

size_t hp_legacy_inserts(const char *body, size_t len, const char *content_type, const char *cte,
    const char *disposition, const struct buf *fields, bool *top, struct hp_insert *ins, size_t max);
void hp_inserts_release(struct hp_insert *ins, size_t n);

/*
 * Where an HTML part's legacy display element goes: just after the
 * opening <body> tag found in p[0..len) (the first bytes of the body), or
 * 0 when there is none.
 */
size_t hp_legacy_html_offset(const char *p, size_t len);

/* ---- inbound ---- */

enum hp_scheme {
	HP_SCHEME_NONE,		/* no header protection: nothing to restore */
	HP_SCHEME_RFC9788,	/* hp="cipher" (or "clear") */
	HP_SCHEME_V1,		/* protected-headers="v1" */
};

const char *hp_scheme_name(enum hp_scheme s);

/* Where the payload was found (hp_restore flags). */
#define HP_IN_ENCRYPTION 0x1	/* it came out of a decryption (legacy display is ours to cut) */
#define HP_SIGNED 0x2		/* it is covered by a signature: its own bytes stay as they are */

struct hp_restore {
	enum hp_scheme scheme;
	bool cipher;		/* hp="cipher", or v1 inside encryption */
	struct hp_edits outer;	/* what the outer header becomes */
	struct buf content;	/* the payload's content fields, hp parameters taken off, CRLF lines */
	size_t body_off;	/* first body byte of the payload */
	enum hp_legacy legacy;	/* the main body part starts with a legacy display element to cut */
	unsigned int refused;	/* transport fields found inside and not taken */
};

/*
 * Plan the restoration for a payload whose first bytes (at least its whole
 * header section) are payload[0..len), in a message whose outer header
 * section is outer[0..outer_len).  A payload without header protection
 * gives HP_SCHEME_NONE, no edits and its content fields as they are.
 * With HP_SIGNED, content holds the payload's content fields unchanged
 * and legacy is HP_LEGACY_NONE: the signed bytes are delivered as signed.
 */
cables_status hp_restore(const char *payload, size_t len, const char *outer, size_t outer_len, unsigned int flags,
    struct hp_restore *out, struct cables_err *err);
void hp_restore_release(struct hp_restore *r);

/*
 * The length of the legacy display element at the start of a text/plain
 * body p[0..len): up to and including the first empty line (RFC 9788
 * 4.5.3.2).  0 when there is no empty line in p, or the lines before it
 * are not "Name: value" lines: then nothing is cut.
 */
size_t hp_legacy_strip_text(const char *p, size_t len);

/*
 * The range [*from, *to) of an HTML body p[0..len) holding the first
 * div of class "header-protection-legacy-display" and the line break
 * after it (4.5.3.3); false when there is none or it does not close.
 */
bool hp_legacy_strip_html(const char *p, size_t len, size_t *from, size_t *to);

/*
 * HP_LEGACY_V1_PART: the range [*from, *to) of a multipart/mixed body
 * p[0..len) (its first bytes) holding the first part and its delimiter
 * line, when that part is a protected-headers="v1" display part (type
 * text/rfc822-headers or text/plain, "Name: value" lines only); cutting it
 * leaves a valid multipart.  False when it is not one or does not end
 * within p.
 */
bool hp_legacy_strip_v1(const char *p, size_t len, const char *boundary, size_t *from, size_t *to);

/*
 * Every legacy display element hp_restore() found reason to look for, as
 * byte ranges of payload[0..len) (the same bytes given to hp_restore, at
 * least the first 64 KiB of the body) to leave out of the delivered body,
 * ascending and disjoint.  Covers all the kinds above; for
 * HP_LEGACY_NESTED the main body parts (RFC 9787: the first part of a
 * multipart/mixed or multipart/related, every part of a
 * multipart/alternative, down to three multipart levels) that are
 * text/plain or text/html
 * in an identity transfer encoding and carry hp-legacy-display="1" (and
 * that parameter, when it ends the Content-Type value as
 * hp_legacy_inserts put it there).  A
 * part cut off by len is looked at as far as it goes: an element is cut
 * only when it is whole within len.  Returns how many ranges were stored (at most max); 0: cut nothing.
 */
#define HP_CUTS_MAX 8

struct hp_cut {
	size_t from, to;
};

size_t hp_legacy_cuts(const char *payload, size_t len, const struct hp_restore *r, struct hp_cut *cuts, size_t max);

/*
 * Who wrote the message.  From and Sender name the author and the agent
 * that sent it, and the edge's checks (DMARC, DKIM and SPF alignment) were
 * made on the outer From; an encrypted message that nobody signed can be
 * made by anyone who has the recipient's certificate, so a protected From
 * or Sender that names another address than the outer one is restored only
 * when a signature over the protected fields, verified by the caller, was
 * made by that address.  RFC 9788's receiving guidance (section 4) makes
 * the protected header section the message's, and its security
 * considerations distinguish encrypted-only from signed-and-encrypted
 * messages: encryption alone gives the fields confidentiality, never
 * authenticity, so an MTA that rewrites the header for every client must
 * not let it stand in for the From the edge checked.
 * Addresses are compared, not display names: a display name is the
 * sender's own choice outside as much as inside.  An outer field names
 * an address only when it is the only field of its name and plainly one
 * mailbox (one '@', no ',' or ';' outside quotes, parsed to one address
 * that its canonical form parses back to): picking one mailbox out of
 * several, or the address a lenient parse made of an odd value, is
 * naming a new one.  Other fields (Subject,
 * To, Cc, Reply-To, Date, ...) are restored as before: none of them was
 * authenticated outside either.
 */
enum hp_identity {
	HP_IDENTITY_NONE,	/* no protected field of that name: nothing to decide */
	HP_IDENTITY_SAME,	/* no address the outer field does not name (display names may differ): restored */
	HP_IDENTITY_SIGNED,	/* another address, and a verified signature was made by each one: restored */
	HP_IDENTITY_KEPT,	/* another address without such a signature: the outer field stays */
};

const char *hp_identity_name(enum hp_identity i);

struct hp_vouch {
	const struct addr_opts *opts;	/* how addresses compare (callers fold no sub-addresses) */
	/*
	 * Did a signature verified as valid, covering the header section the
	 * protected fields were read from, come from addr (opts' form)?
	 */
	bool (*signed_by)(void *arg, const char *addr);
	void *arg;
};

struct hp_identities {
	enum hp_identity from;
	enum hp_identity sender;
	char claimed[256];	/* the first protected address that no signature vouched for, or "" */
};

/*
 * Check r's From and Sender edits against the outer header section
 * outer[0..outer_len) (hp_restore's), and drop every edit of a field
 * judged HP_IDENTITY_KEPT, so that the outer field stays as it came.  A
 * protected field with an address that cannot be normalised, or with none
 * at all (a group, a bare display name), is never vouched for.
 */
void hp_restore_identity(struct hp_restore *r, const char *outer, size_t outer_len, const struct hp_vouch *v,
    struct hp_identities *out);

/*
 * Is addr (normalised with o) among the addresses of r's protected To and
 * Cc, the ones the restored header shows?  A signed payload replayed to
 * another recipient (re-encrypted to them: surreptitious forwarding) still
 * names its first recipients there, and so does mail that came by Bcc,
 * a list or an alias: the answer is for the reader's information, never a
 * reason to refuse.  True when there is nothing to judge by: no header
 * protection, or a protected-headers="v1" payload without To or Cc (the
 * outer ones stay); with RFC 9788, whose protected section alone decides,
 * no protected To or Cc names no one.
 */
bool hp_restore_names(const struct hp_restore *r, const char *addr, const struct addr_opts *o);
/* hp_restore_names for each of naddr addresses at once (named[j] for addr[j]), the fields read once. */
void hp_restore_names_each(const struct hp_restore *r, const char *const *addr, size_t naddr,
    const struct addr_opts *o, bool *named);

void hp_edits_release(struct hp_edits *e);

/*
 * Apply edits e in order to the header section head[0..len) ("Name:value"
 * fields, CRLF or LF, folds kept), appending the result to out (fields an
 * edit does not touch byte for byte; SET and ADD write "Name:" value CRLF).
 * An edit naming a field that is not there is skipped.  CABLES_ERR_SYNTAX
 * when a line is neither a field nor a fold.
 */
cables_status hp_edits_apply(const char *head, size_t len, const struct hp_edits *e, struct buf *out,
    struct cables_err *err);

#endif
