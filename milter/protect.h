/*
 * protect - the privacy of an outbound copy on the wire: header protection
 * (RFC 9788, lib/hp.c) and the legacy display element, as
 * doc/header-protection.md plans them, carried out over the message's
 * spooled header and body.
 *
 * protect_plan() decides for one recipient group (the strictest
 * HeaderProtection of its members) and builds, in memory, the header
 * section of the entity to encrypt (protected fields, then the content
 * fields with hp="cipher") and the legacy display insertions;
 * protect_entity() lays out the entity to encrypt (head, then body ranges
 * with the insertions between them); protect_outer() edits the outer
 * header of the message in the transaction through the MTA, and
 * protect_headers() writes the edited outer header section of a copy that
 * is re-injected.
 *
 * struct protect owns everything it holds; protect_release() frees it
 * (also after a failed plan, and on a zeroed struct).  A plan that fails
 * (CABLES_ERR_SYNTAX: a field Cables cannot protect faithfully;
 * CABLES_ERR_TOOBIG: a header section over HP_HEAD_MAX; CABLES_ERR_IO)
 * must temp-fail the message: nothing leaves with its Subject outside by
 * accident.  Header protection is skipped (on false, the reason in
 * skipped) when the sender's client signed the content or marked it with
 * header protection of its own: Cables cannot add fields inside it.
 */
#ifndef CABLES_PROTECT_H
#define CABLES_PROTECT_H

#include <stdbool.h>

#include "entity.h"
#include "hp.h"
#include "keys.h"
#include "message.h"
#include "mta.h"
#include "spool.h"
#include "status.h"
#include "util.h"

#define PROTECT_INSERTS_MAX 4	/* two main body parts: within ENTITY_MAX_PARTS with signature and padding */

struct protect {
	bool on;			/* header protection applies */
	enum hp_policy hcp;
	char skipped[96];		/* why not, for the log ("" when on or policy-less) */
	struct hp_protect p;
	struct buf head;		/* the entity's header section: protected fields, content fields, empty line */
	struct hp_insert ins[PROTECT_INSERTS_MAX];
	size_t nins;
	const char *legacy;		/* "text", "html", "parts" or NULL: for the log */
	struct buf outer_head;		/* the message's header section as received (copies) */
};

/*
 * Plan for the members[0..n) of message m (indexes into m->rcpts);
 * client_signed: the sender's client signed the content.
 */
cables_status protect_plan(struct protect *pr, const struct message *m, const struct milter_env *env,
    const size_t *members, size_t n, bool client_signed, struct cables_err *err);

/* The entity to encrypt: pr's head (or the content head when off) and m's body with the insertions. */
void protect_entity(const struct protect *pr, const struct message *m, struct buf *plain_head, struct entity_src *src);

/* Edit the outer header of the message in the transaction (after its body was replaced); -1 if the MTA refuses. */
int protect_outer(const struct protect *pr, const struct mta *mta);

/* Carry out edits (in order) on the message in the transaction through the MTA; -1 if it refuses. */
int protect_edits_apply(const struct hp_edits *edits, const struct mta *mta);

/*
 * *out: a new spool holding the outer header section of a re-injected copy
 * with the edits applied, or NULL when header protection is off (the
 * message's own header section goes).
 */
cables_status protect_headers(struct spool **out, const struct protect *pr, const char *tmpdir,
    struct cables_err *err);

/* " hp=baseline legacy=text" or " hp=skipped (why)" or "" for the log. */
void protect_note(const struct protect *pr, char *out, size_t len);

void protect_release(struct protect *pr);

#endif
