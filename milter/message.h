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

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "outcome.h"
#include "policy.h"
#include "spool.h"
#include "status.h"
#include "util.h"

struct handler_key;
struct body_handler;

struct rcpt {
	char *arg;		/* as the MTA gave it (for smfi_delrcpt) */
	char *addr;		/* as given, without <> */
	char *esmtp;		/* RCPT parameters worth keeping (NOTIFY=, ORCPT=), or NULL */
	bool bcc;		/* not named in To, Cc, Resent-To or Resent-Cc */
	char *norm;		/* normalised for lookup; NULL when not an address */
	bool local;		/* domain in LocalDomains */
	enum enc_policy policy;
	struct handler_key *key;	/* usable key, once looked up (handler.h), or NULL */
	char *why_no_key;	/* reason no key is usable */
	const char *why_what;	/* what was missing: "S/MIME certificate", "OpenPGP key", "key" */
};

struct header {
	char *name;
	char *value;		/* as the MTA sent it */
	unsigned int index;	/* 1-based occurrence among fields of this name */
};

enum plan {
	PLAN_NONE,		/* nothing decided yet */
	PLAN_ENCRYPT,		/* every remote recipient has a usable key, all of one format */
	PLAN_SIGN_ONLY,		/* leaves unencrypted, but signed */
	PLAN_BLOCKED,		/* a require recipient cannot be served: refuse unless already encrypted */
	PLAN_INBOUND,		/* local recipients only: decrypt, verify, clean up */
	PLAN_SPLIT,		/* recipients in groups: one kept, the others re-injected */
};

/* A group of recipients treated alike (split delivery). */
struct group {
	bool encrypt;		/* encrypted to its members' certificates; else as it is */
	bool bcc;		/* a Bcc recipient alone */
	bool epoch;		/* its members' keys are epoch keys (forward secrecy): no long-term key beside them */
	const struct body_handler *h;	/* encrypted: through this handler (handler.h) */
	size_t *members;	/* indexes into rcpts */
	size_t n;
};

/* Outer header fields counted, for anti-forgery and header protection. */
enum outer_field {
	OUTER_X_CABLES, OUTER_MARKER, OUTER_RELEASE, OUTER_SUBJECT, OUTER_FROM, OUTER_TO, OUTER_CC, OUTER_REPLY_TO,
	OUTER_DATE, OUTER_MESSAGE_ID, OUTER_IN_REPLY_TO, OUTER_REFERENCES, OUTER_COUNT
};

extern const char *const outer_field_names[OUTER_COUNT];

struct message {
	char *queue_id;
	char *sender;		/* bare address; "" for the null sender */
	char *mail_esmtp;	/* MAIL parameters worth keeping (RET=, ENVID=, BODY=, SMTPUTF8), or NULL */
	bool sender_local;	/* local domain, or a trusted client */
	bool client_trusted;	/* SMTP AUTH, InternalHosts, or submitted on this host */
	char *auth_login;	/* the SASL login ({auth_authen}), or NULL */
	struct rcpt *rcpts;
	size_t nrcpts;
	struct header *content;	/* Content-* and MIME-Version fields, in order */
	size_t ncontent;
	struct spool *headers;	/* every field as received, "Name:value" CRLF, for copies */
	struct buf visible;	/* the values of To, Cc, Resent-To, Resent-Cc, for Bcc detection */
	bool header_leadspc;	/* values include the space after the colon */
	unsigned int outer[OUTER_COUNT];	/* how many of each counted field */
	const char *authserv_id;	/* ours (the configuration's, which outlives the message) */
	unsigned int nauthres;	/* Authentication-Results fields received */
	unsigned int *authres_ours;	/* 1-based indexes of those claiming our authserv-id, ascending */
	size_t nauthres_ours;
	char *from;		/* value of the first From field */
	char *marker;		/* value of the first re-injection marker field */
	char *release;		/* value of the first X-Cables-Release field (a held message resubmitted; hold.h) */
	bool release_checked;	/* hold_release_check() ran: */
	bool release_valid;	/* the field names a held record, with its token: this is its resubmitted copy */
	char release_id[17];	/* that record's ID */
	bool auth_from_release;	/* auth_login is the held record's (the original submission's SASL login) */
	char marker_note[128];	/* for the log line: a marker field was removed */
	bool have_early;	/* decided at end of header, but a marker needs the body */
	struct outcome early;
	struct spool *body;
	cables_status body_status;	/* first error while spooling */
	struct cables_err body_err;
	enum plan plan;
	char blocked_reason[CABLES_ERR_MAX];
	bool blocked_bcc;	/* blocked: a Bcc recipient's key would be in the copy others see */
	bool has_require;	/* some remote recipient's policy is require */
	enum fail_action on_internal_error;	/* combined over the recipients */
	enum fail_action on_key_not_found;	/* combined over the recipients without a key */
	struct group *groups;	/* PLAN_SPLIT: groups[0] stays in the transaction */
	size_t ngroups;
	enum fail_action on_decrypt_error;	/* combined over the local recipients */
	struct handler_key *signers[2];	/* the sender's signing key of each format (enum key_format), or NULL */
	char sign_note[CABLES_ERR_MAX];	/* why a wanted signature is missing */
	char fs_note[CABLES_ERR_MAX];	/* for the log line: forward secrecy given up for recipients, and why */
};

struct message *message_new(const struct config *cfg, const char *sender, bool sender_local,
    bool client_trusted);
void message_free(struct message *m);

void message_set_queue_id(struct message *m, const char *qid);
/* The MAIL FROM parameters (argv of the envfrom callback after the address). */
void message_set_mail_esmtp(struct message *m, char **args);
/*
 * Returns false, adding nothing, when arg cannot be classified as local or
 * remote: not an envelope address, or an address whose domain has no one
 * form (an address literal, a name IDNA 2008 refuses; see addr.h).  The
 * caller must refuse such a recipient (temp-fail), never guess.  args are
 * its parameters (may be NULL).
 */
bool message_add_rcpt(struct message *m, const struct config *cfg, const char *arg, char **args);
/* Forget the recipient message_add_rcpt() added last (the milter temp-failed its RCPT after all). */
void message_drop_last_rcpt(struct message *m);
/* Mark recipients that no To, Cc, Resent-To or Resent-Cc field names (call at end of header). */
void message_find_bcc(struct message *m, const struct config *cfg);
void message_add_header(struct message *m, const char *name, const char *value);
void message_add_body(struct message *m, const void *p, size_t n);

/*
 * The strictest of two actions for one message with several recipients:
 * tempfail (nothing lost) before reject before hold before quarantine
 * before accept.
 */
enum fail_action fail_action_combine(enum fail_action a, enum fail_action b);

/* Set on_internal_error from every recipient's On-InternalError. */
void message_combine_actions(struct message *m, const struct config *cfg);

/*
 * Fields that claim to be ours and were received, so are forged: every
 * X-Cables field and every Authentication-Results field with our
 * authserv-id (or one that cannot be read).  How many.
 */
unsigned int message_forged_fields(const struct message *m);

/* Is the index-th (1-based) Authentication-Results field one of those? */
bool message_authres_is_ours(const struct message *m, unsigned int index);

/* First value of a content header field, or NULL. */
const char *message_header_value(const struct message *m, const char *name);

/*
 * The content entity's header section as it was received, CRLF line ends,
 * followed by the empty line that separates it from the body.
 */
void message_content_head(const struct message *m, struct buf *out);
/*
 * The same with the first Content-Type's value replaced by content_type
 * (raw, as the MTA would send it), or that field added when there is none.
 */
void message_content_head_ct(const struct message *m, const char *content_type, struct buf *out);

#endif
