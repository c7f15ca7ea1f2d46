/*
 * outbound - the decision and the encryption for mail from a local sender
 * to remote recipients.  No libmilter here: the MTA is reached through the
 * struct mta operations, which the milter implements with smfi_*() and
 * tests implement with a recorder.
 *
 * outbound_plan() runs at end of header and decides everything that does
 * not need the body (who is remote, each recipient's policy, their
 * certificates).  When nothing can change the message it returns an
 * accepting outcome, so the MTA need not send the body.  outbound_finish()
 * runs at end of message: it checks the body (too large? already
 * encrypted?), then encrypts and rewrites the message, or refuses it.
 *
 * Failure semantics: a recipient whose policy is require never receives
 * plaintext.  Internal errors follow On-InternalError, except that accept
 * becomes tempfail when a require recipient is present or when the body
 * replacement has already begun.
 */
#ifndef CABLES_OUTBOUND_H
#define CABLES_OUTBOUND_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "keystore.h"
#include "message.h"

/* What the milter asks of the MTA.  Each returns 0 on success, -1 on failure. */
struct mta {
	int (*chgheader)(void *ctx, const char *name, int index, const char *value);
	int (*addheader)(void *ctx, const char *name, const char *value);
	int (*insheader)(void *ctx, int index, const char *name, const char *value);
	int (*replacebody)(void *ctx, const void *p, size_t n);
	void *ctx;
};

enum verdict {
	VERDICT_CONTINUE,	/* undecided: the body is needed */
	VERDICT_ACCEPT,		/* deliver unchanged */
	VERDICT_MODIFIED,	/* deliver as rewritten */
	VERDICT_TEMPFAIL,	/* 4xx: the MTA keeps the message */
	VERDICT_REJECT,		/* 5xx */
};

struct outcome {
	enum verdict verdict;
	const char *what;	/* log word: pass, plaintext, encrypted, tempfail, reject */
	char detail[512];	/* log detail */
	const char *rcode;	/* SMTP reply for tempfail/reject */
	const char *xcode;
	char reply[256];
};

struct smime_cache;

struct outbound_env {
	const struct config *cfg;
	struct keystore *ks;
	struct smime_cache *certs;	/* may be NULL: decode every time */
	time_t now;
};

void outbound_plan(struct message *m, const struct outbound_env *env, struct outcome *out);
void outbound_finish(struct message *m, const struct outbound_env *env, const struct mta *mta,
    struct outcome *out);

#endif
