/*
 * restore - what a local user's decrypted copy looks like: the padding
 * field Cables senders put first (lib/pad.c) is cut, and the protected
 * header fields (RFC 9788 hp=, or Thunderbird's protected-headers="v1")
 * replace the outer ones the sender's policy obscured, with the legacy
 * display element cut, as doc/header-protection.md plans (lib/hp.c).
 *
 * restore_plan() reads the decrypted entity (a spool) and the message's
 * header section as received; restore_apply() rewrites the message in the
 * transaction through the MTA; restore_copy() gives the content fields,
 * body and outer header section of a re-injected copy.  struct restore
 * owns what it holds (restore_release(), also on a zeroed struct).
 *
 * Protected From and Sender fields are identities: restore_identity()
 * decides them once the caller has checked the signature (lib/hp.h says
 * the rule), and a plan applied without that decision keeps the outer
 * From and Sender whenever the protected ones name someone else.
 *
 * A protection that cannot be restored faithfully (lib/hp.c refuses a
 * field) is not an error: the message is delivered decrypted with its
 * outer header as it came, and why says so for the log.  Errors are the
 * spool's (CABLES_ERR_IO): temp-fail.
 */
#ifndef CABLES_RESTORE_H
#define CABLES_RESTORE_H

#include <stdbool.h>
#include <sys/types.h>

#include "entity.h"
#include "hp.h"
#include "message.h"
#include "mta.h"
#include "spool.h"
#include "status.h"
#include "util.h"

struct restore {
	off_t from;		/* where the entity starts in the plaintext (after the padding field) */
	off_t body_off;		/* where the entity's body starts in the plaintext */
	bool is_signed;		/* the entity is multipart/signed: its bytes stay as they are, and its
				   first part, the payload, is what its signature covers */
	bool planned;		/* hp_restore gave a plan (r is valid) */
	struct hp_restore r;
	off_t payload_off;	/* where the payload (the entity, or its signed part) starts */
	struct hp_cut cuts[HP_CUTS_MAX];	/* plaintext offsets to leave out, ascending */
	size_t ncuts;
	struct buf entity_content;	/* the entity's own content fields, CRLF lines */
	char why[CABLES_ERR_MAX];	/* why nothing was restored, or "" */
	bool identity_decided;	/* restore_identity() ran */
	struct hp_identities id;	/* what it decided for From and Sender */
};

/* Plan for the decrypted entity in plain (a whole entity: header fields and body). */
cables_status restore_plan(struct restore *rs, const struct message *m, const struct spool *plain,
    struct cables_err *err);

/*
 * The protected From value (raw) the plan would put outside, or NULL: the
 * address a signature over the payload is to be judged for.
 */
const char *restore_protected_from(const struct restore *rs);

/*
 * Does the restored header name addr (normalised with o) in its To or Cc
 * (hp_restore_names)?  True when nothing was restored.
 */
bool restore_names(const struct restore *rs, const char *addr, const struct addr_opts *o);
/* restore_names for n addresses at once (named[j] for addr[j]). */
void restore_names_each(const struct restore *rs, const char *const *addr, size_t n, const struct addr_opts *o,
    bool *named);

/*
 * Decide the protected From and Sender (hp_restore_identity): v says which
 * addresses a verified signature over the payload vouches for (NULL: none).
 * Errors are the spool's.
 */
cables_status restore_identity(struct restore *rs, const struct message *m, const struct hp_vouch *v,
    struct cables_err *err);

/* Replace the message's content fields and body, then restore its header; -1 if the MTA refuses. */
int restore_apply(struct restore *rs, const struct message *m, const struct mta *mta, const struct spool *plain);

/*
 * For a re-injected copy: content gets its content fields ("MIME-Version"
 * first), body its body from plain, *headers a new spool with its outer
 * header section (NULL: the message's as received).
 */
cables_status restore_copy(struct restore *rs, const struct message *m, const struct spool *plain,
    const char *tmpdir, struct buf *content, struct entity_src *body, struct spool **headers,
    struct cables_err *err);

/*
 * " hp=rfc9788 restored=3 refused=0 legacy=cut pad=cut" or "" for the log,
 * with " from=kept-outer (...)" when a protected identity was not restored.
 */
void restore_note(const struct restore *rs, struct buf *log);

void restore_release(struct restore *rs);

#endif
