/*
 * handler - the body-handler interface: one table of operations (find a
 * recipient's or sender's key; encrypt, signing in the same call;
 * clear-sign; tell ciphertext from a mislabelled body; open, decrypt and
 * verify what arrives) with two implementations, S/MIME over smime/
 * (handler_smime.c) and OpenPGP over pgp/ (handler_pgp.c).
 *
 * Outbound, the milter picks a handler per recipient (Format,
 * FormatPreference) and encrypts each recipient group through its
 * handler; inbound, it asks each handler whether it claims the message and
 * decrypts or verifies through the one that does.  Only the handlers know
 * a format: keys are opaque (struct handler_key, whose shared part is in
 * handler_impl.h for handler.c and the handlers alone), signatures and
 * header fields are the format-neutral types below, and outbound.c and
 * inbound.c neither call smime/ or pgp/ nor use their types.  (Clear-
 * signing mail that leaves unencrypted is an S/MIME feature: only that
 * handler has a sign operation.)
 *
 * The implementations live here, beside the milter, rather than in smime/
 * and pgp/: they need the milter's view of the key store (keys.h), while
 * smime/ and pgp/ stay libraries of crypto operations with no policy.
 *
 * The milter's modules, each calling only those listed below it:
 *
 *   milter.c      libmilter callbacks, the only code that talks to libmilter;
 *                 a message goes to dispatch.c, or to gate.c when it came in
 *                 through the re-injection listener
 *   dispatch.c    end of header and end of message: inbound or outbound,
 *                 the marker check, forged fields removed
 *   outbound.c, inbound.c
 *                 plan and finish of each path, through this interface
 *                 only: no format, no smime/ or pgp/
 *   copies.c      split-delivery helpers for both paths (queue a copy,
 *                 remove its recipients, describe it, check a marker);
 *                 calls neither path
 *   restore.c, protect.c
 *                 header protection both ways (lib/hp.c's plans carried out
 *                 over the spooled message): restored on decrypted mail
 *                 (and its padding cut), applied to outbound copies;
 *                 call neither path
 *   handler.c, handler_smime.c, handler_pgp.c
 *                 the formats, over smime/ and pgp/
 *   gate.c, reinject.c
 *                 markers, copies on the wire, the verify-only listener
 *   keys.c, khkey.c, khclient.c, keydclient.c
 *                 the key store, private-key operations in cables-keyholder,
 *                 lookups through cables-keyd
 *   message.c, mta.c, outcome.c
 *                 the per-message context, the MTA's edit operations,
 *                 verdicts (one call goes up: message_free() frees the
 *                 recipients' and the sender's keys with handler_key_free)
 */
#ifndef CABLES_HANDLER_H
#define CABLES_HANDLER_H

#include <stdbool.h>
#include <stddef.h>

#include "entity.h"
#include "keys.h"
#include "message.h"
#include "mime.h"
#include "pad.h"
#include "sink.h"
#include "spool.h"
#include "status.h"
#include "util.h"

struct body_handler;

/* What the header section says: not this format, perhaps (the body decides), or surely. */
enum handler_claim { CLAIM_NO, CLAIM_MAYBE, CLAIM_SURE };

/* A usable key, found through a handler; only that handler looks inside (handler_impl.h). */
struct handler_key;

/* The handler that found k. */
const struct body_handler *handler_key_handler(const struct handler_key *k);
/* Is k a recipient's epoch key (doc/key-exchange.md, "Forward secrecy")?  A copy with one holds no long-term key. */
bool handler_key_epoch(const struct handler_key *k);
/* An epoch key k becomes the recipient's long-term key found with it; false when there was none. */
bool handler_key_drop_epoch(struct handler_key *k);
void handler_key_free(struct handler_key *k);

/* A header field (name and value) a handler produced. */
struct handler_field {
	const char *name;
	const char *value;
};

/* A clear-signed entity: prologue, then the signed entity, then epilogue, labelled content_type. */
struct handler_signed {
	const char *format;	/* the handler's name */
	char content_type[200];
	struct buf prologue;
	struct buf epilogue;
};

void handler_signed_release(struct handler_signed *s);

/* A checked signature. */
enum handler_sig_status { HANDLER_SIG_VALID, HANDLER_SIG_UNTRUSTED, HANDLER_SIG_INVALID };

struct handler_sig {
	enum handler_sig_status status;
	char signer[256];		/* the signer's address, or "" */
	char reason[256];		/* why untrusted or invalid */
	struct handler_key *key;	/* the signer's key when the signature carries it (S/MIME), or NULL */
	/*
	 * Valid because the key store holds the key for this one address (the
	 * From's it was judged for, normalised): it vouches for no other.
	 * "": valid through TrustAnchors (for every address the certificate
	 * names), or not valid.
	 */
	char held_for[256];
};

const char *handler_sig_status_name(enum handler_sig_status s);
void handler_sig_release(struct handler_sig *sig);

/* Does k name the address addr (normalised; NULL: false)? */
bool handler_key_names(const struct milter_env *env, const struct handler_key *k, const char *addr);

/*
 * Keep k, the signer's key of a valid signature on a message whose From
 * address is from (as written; NULL if none), for from (HarvestCertificates;
 * keys_harvest() in keys.h says how); why says what happened.
 */
enum harvest_outcome handler_key_harvest(const struct milter_env *env, const struct handler_key *k, const char *from,
    char *why, size_t why_len);

/* What to encrypt, to whom. */
struct handler_encrypt {
	const struct entity_src *entity;	/* the content entity (Content-* fields and body) */
	struct handler_key *const *keys;	/* the recipients' keys, then the sender's (EncryptToSelf) */
	size_t nkeys;
	bool hidden;				/* a Bcc recipient's copy: name no key */
	const struct handler_key *signer;	/* sign with this key (of this handler), or NULL */
	bool pad;				/* pad to a size bucket (Padding buckets; lib/pad.h) */
	size_t pad_cap;				/* never pad the wire size past this (0: no cap) */
};

/* What encryption produced: the header fields of the new entity, and words for the log (never a field on the wire). */
#define HANDLER_FIELDS_MAX 4

struct handler_result {
	struct handler_field fields[HANDLER_FIELDS_MAX];
	size_t nfields;
	char content_type[160];	/* storage for a Content-Type with a boundary */
	char trace[64];		/* "format=smime; cipher=aes256-cbc" */
	char log[64];		/* "format=smime cipher=aes256-cbc" */
	size_t padded;		/* the padding field's length, 0 when none */
};

/*
 * The entity to encrypt for in, padded when in->pad: a padding field
 * (lib/pad.h) in field, then entity's pieces, in out, so that h's estimate
 * of the wire size (h->pad_cost) fills a size bucket.  The handlers call
 * it on the entity they encrypt (the multipart/signed one when signing,
 * whose header the signature does not cover).  *padded: the field's length.
 */
/*
 * entity wrapped as multipart/signed in out: "Content-Type: content_type"
 * and a blank line (written into head), the prologue, the entity, the
 * epilogue (which holds the signature part).
 */
void handler_signed_entity(const struct entity_src *entity, const char *content_type, const struct buf *prologue,
    const struct buf *epilogue, struct buf *head, struct entity_src *out);

cables_status handler_pad(const struct body_handler *h, const struct milter_env *env, const struct handler_encrypt *in,
    const struct entity_src *entity, struct buf *field, struct entity_src *out, size_t *padded,
    struct cables_err *err);

/* A message opened for decryption (the handler's own state). */
struct handler_msg;

struct body_handler {
	const char *name;		/* "smime", "pgp": X-Cables and the log say format=NAME */
	const char *key_noun;		/* "S/MIME certificate", "OpenPGP key": for reasons */
	const char *no_key;		/* the reason find_key gives when the store has no key at all */
	enum key_format format;

	/*
	 * The newest key of addr (normalised) usable for use, or NULL with *why
	 * (malloc'd) saying why none is; *st is the key store's (or gpg's)
	 * status, an error only when they failed.
	 */
	struct handler_key *(*find_key)(const struct milter_env *env, const char *addr, enum key_use use, char **why,
	    cables_status *st, struct cables_err *err);
	bool (*same_key)(const struct handler_key *a, const struct handler_key *b);
	void (*key_free)(struct handler_key *k);	/* handler_key_free() calls it */
	/*
	 * handler_key_names() and handler_key_harvest(); NULL when the format's
	 * signatures carry no key (struct handler_sig) or nothing is kept.
	 */
	bool (*key_names)(const struct milter_env *env, const struct handler_key *k, const char *addr);
	enum harvest_outcome (*harvest)(const struct milter_env *env, const struct handler_key *k, const char *from,
	    char *why, size_t why_len);

	/*
	 * What encrypting n plaintext bytes for in's keys makes on the wire
	 * (the body the MTA sends) when the entity comes in pieces
	 * entity_src pieces, an estimate that may be a few bytes high, never
	 * low: padding fills a size bucket by it (handler_pad).
	 */
	void (*pad_cost)(const struct milter_env *env, const struct handler_encrypt *in, size_t pieces,
	    struct pad_cost *c);
	/* Encrypt (and sign, when in->signer) the entity; the output body goes to out. */
	cables_status (*encrypt)(const struct milter_env *env, const struct handler_encrypt *in, struct byte_sink *out,
	    struct handler_result *res, struct cables_err *err);
	/*
	 * Clear-sign the entity with signer (a key of this handler) for a copy
	 * that leaves unencrypted; NULL when the format does not (clear-signing
	 * is an S/MIME feature: multipart/signed that every client shows).
	 */
	cables_status (*sign)(const struct milter_env *env, const struct handler_key *signer,
	    const struct entity_src *entity, struct handler_signed *out, struct cables_err *err);

	/*
	 * Outbound: is a body labelled as this format's ciphertext (crypto, as
	 * mime_detect_armor() found it, the armored message at armor) really
	 * ciphertext?  CABLES_ERR_NOTFOUND: not this format's label; CABLES_OK:
	 * it is; CABLES_ERR_IO or CABLES_ERR_INTERNAL: this server failed (err
	 * says why); another status: it is not, why says so for the log.
	 */
	cables_status (*check_ciphertext)(const struct message *m, const struct milter_env *env, enum mime_crypto crypto,
	    const off_t armor[2], char *why, size_t why_len, struct cables_err *err);

	/*
	 * Inbound.  may_claim (at end of header): could the body be this
	 * format's ciphertext (so that the milter needs it), or is it surely
	 * (by its Content-Type)?  open: does this
	 * handler claim the message (its
	 * Content-Type, and for text/plain its body)?  CABLES_ERR_NOTFOUND:
	 * not this format; CABLES_OK with *hm: claimed; another status: claimed
	 * but not usable, why in err (CABLES_ERR_IO and CABLES_ERR_INTERNAL are
	 * failures of this server, the others describe the message).
	 */
	enum handler_claim (*may_claim)(const struct message *m, const struct milter_env *env);
	cables_status (*open)(const struct message *m, const struct milter_env *env, struct handler_msg **hm,
	    struct cables_err *err);
	/*
	 * Is the message encrypted to a key of recipient addr (normalised) whose
	 * secret the store holds?  When not, why says so.  The first key named
	 * is the one decrypt() uses.  An error is a failure of this server.
	 */
	cables_status (*names)(struct handler_msg *hm, const struct milter_env *env, const char *addr, bool *named,
	    char *why, size_t why_len, struct cables_err *err);
	/* Decrypt the whole content into a new spool (only on success). */
	cables_status (*decrypt)(struct handler_msg *hm, const struct milter_env *env, struct spool **plain,
	    struct cables_err *err);
	/* Is the plaintext a whole entity (header fields and body), or the new body of the same entity? */
	bool (*plain_is_entity)(const struct handler_msg *hm);
	/* "decrypted; format=...; key=..." into the X-Cables value and the log. */
	void (*report)(const struct handler_msg *hm, struct buf *field, struct buf *log);
	/*
	 * A signature checked in the same pass as decryption: true and *sig
	 * filled when there was one (judged against the key store for the From
	 * address from_field); false when the format signs separately.
	 */
	bool (*signature)(struct handler_msg *hm, const struct milter_env *env, const char *from_field,
	    struct handler_sig *sig);
	void (*close)(struct handler_msg *hm);

	/*
	 * Signatures made separately from encryption.  is_signed: is an entity
	 * with this Content-Type signed in this format?  verify: check such an
	 * entity (its body starts at from in sp), judged for the From address
	 * from_field; false when it is not this format's signed entity.  A
	 * signature that cannot be checked at all is reported as invalid with
	 * the reason.
	 */
	bool (*is_signed)(const char *content_type);
	bool (*verify)(const struct milter_env *env, const char *content_type, const char *cte, const struct spool *sp,
	    off_t from, const char *from_field, struct handler_sig *sig);

	/*
	 * Inbound, after names(): can one decryption serve every recipient the
	 * message was named for?  false when they have different keys and
	 * decrypt() would need another's: each then gets its own copy (see
	 * inbound.c).  NULL: always.
	 */
	bool (*one_copy)(const struct handler_msg *hm);
};

extern const struct body_handler handler_smime;
extern const struct body_handler handler_pgp;

/* Every handler, S/MIME first; and the one of a format. */
extern const struct body_handler *const handlers[];
#define NHANDLERS 2
const struct body_handler *handler_of(enum key_format f);

#endif
