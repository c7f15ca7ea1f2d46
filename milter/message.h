/*
 * message - the per-message context of the milter: envelope, content header
 * fields, spooled body, and what was decided at end of header.
 *
 * It is created at MAIL FROM (message_new) and freed by message_free(),
 * the one function called from eom, abort, close and the next MAIL FROM.
 * Everything it points to is owned by it.  It holds no libmilter state, so
 * the outbound logic can be driven by tests without an MTA.
 */
#ifndef CABLES_MESSAGE_H
#define CABLES_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "config.h"
#include "policy.h"
#include "spool.h"
#include "status.h"
#include "util.h"

struct rcpt {
	char *addr;		/* as given, without <> */
	char *norm;		/* normalised for lookup; NULL when not an address */
	bool local;		/* domain in LocalDomains */
	enum enc_policy policy;
	X509 *cert;		/* usable certificate, once looked up */
	char *why_no_key;	/* reason no certificate is usable */
};

struct header {
	char *name;
	char *value;		/* as the MTA sent it */
	unsigned int index;	/* 1-based occurrence among fields of this name */
};

enum plan {
	PLAN_NONE,		/* nothing decided yet */
	PLAN_ENCRYPT,		/* every remote recipient has a usable certificate */
	PLAN_BLOCKED,		/* a require recipient cannot be served: refuse unless already encrypted */
};

struct message {
	char *queue_id;
	char *sender;		/* bare address; "" for the null sender */
	bool sender_local;	/* local domain, authenticated, or internal client */
	struct rcpt *rcpts;
	size_t nrcpts;
	struct header *content;	/* Content-* and MIME-Version fields, in order */
	size_t ncontent;
	bool header_leadspc;	/* values include the space after the colon */
	struct spool *body;
	cables_status body_status;	/* first error while spooling */
	struct cables_err body_err;
	enum plan plan;
	char blocked_reason[CABLES_ERR_MAX];
	bool has_require;	/* some remote recipient's policy is require */
};

struct message *message_new(const struct config *cfg, const char *sender, bool sender_local);
void message_free(struct message *m);

void message_set_queue_id(struct message *m, const char *qid);
/* Returns false when arg is not a usable envelope address. */
bool message_add_rcpt(struct message *m, const struct config *cfg, const char *arg);
void message_add_header(struct message *m, const char *name, const char *value);
void message_add_body(struct message *m, const void *p, size_t n);

/* First value of a content header field, or NULL. */
const char *message_header_value(const struct message *m, const char *name);

/*
 * The content entity's header section as it was received, CRLF line ends,
 * followed by the empty line that separates it from the body.
 */
void message_content_head(const struct message *m, struct buf *out);

#endif
