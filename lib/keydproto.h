/*
 * keydproto - the cables-keyd wire protocol, in the style of Postfix policy
 * delegation: a request is "name=value" lines ended by an empty line; so is
 * the reply.  `socat - UNIX:/run/cables-keyd/keyd.sock` can talk to it.
 *
 *   request=lookup            request=stats
 *   address=bob@b.test
 *   address=carol@c.test
 *   (empty line)
 *
 * The reply to a lookup has one "key=" line per usable key and one
 * "result=" line per address, in the order asked:
 *
 *   key=bob@b.test format=smime source=store trust=local fingerprint=... expires=1830000000
 *   result=bob@b.test found
 *   result=carol@c.test none reason=no such record (proven by NSEC)
 *   result=dave@d.test tempfail reason=no answer: ...
 *   result=erin@e.test none encrypting=remembered since=1780000000 reason=...
 *   result=fay@f.test none encrypting=published reason=...
 *   (empty line)
 *
 * "encrypting=" (after the outcome, on a result without keys) says that
 * the address's domain must not get plaintext (doc/key-exchange.md, "No
 * downgrade"): keyd remembers it offering keys (since when), or it
 * publishes _cables-policy p=require.  A client treats such a recipient
 * under policy encrypt as one under require.  Replies without it are
 * those of older keyds, and parse as before.
 *
 * cables-keyd is the key store's writer for public keys:
 *
 *   request=import          request=delete            request=list
 *   address=bob@b.test      address=bob@b.test
 *   format=smime            fingerprint=3f2a9c01  (optional hex prefix)
 *   force=no                (empty line)
 *   data=MIIF...            (base64, any number of data= lines, joined)
 *   (empty line)
 *
 * import answers "stored=ADDRESS format=F fingerprint=FPR expires=T" (keyd
 * derives the fingerprint and validity from the key, which must name the
 * address and, unless force=yes, be usable now); delete answers
 * "deleted=N"; list answers one line per stored key:
 *
 *   key=bob@b.test format=smime source=imported fingerprint=... not_before=T expires=T private=no
 *
 * A check is the milter's question at RCPT time, answered at once from
 * what keyd holds (never a query on the network): may a lookup of these
 * addresses be answered without the network ("cached"), would it have to
 * ask ("lookup"), or has keyd marked the address's domain unresponsive
 * (its recent lookups got no answer) so that a lookup now would only wait
 * for LookupTimeout and temp-fail ("unresponsive", with the seconds the
 * mark still lasts and why):
 *
 *   request=check             check=bob@b.test cached
 *   address=bob@b.test        check=dave@dead.test unresponsive retry=420 reason=...
 *   address=dave@dead.test    (empty line)
 *   (empty line)
 *
 * A request that cannot be parsed gets "error=REASON" and the empty line;
 * the connection stays usable.  Limits keep a hostile client cheap: lines
 * of at most KEYD_LINE_MAX bytes, requests of at most KEYD_REQUEST_MAX
 * bytes and KEYD_ADDRESSES_MAX addresses (Postfix's smtpd_recipient_limit).
 * A client with more addresses sends them in several requests (cables-milter
 * sends batches of KEYD_BATCH_MAX side by side, on connections of their
 * own, within one deadline).
 *
 * This module is the protocol's one owner: clients (cables-milter,
 * cables-keyctl) format requests with keyd_*_request_format() and parse
 * replies with keyd_*_reply_parse(); keyd parses requests with
 * keyd_request_parse() and formats replies with the *_format() functions.
 * Nothing else writes or reads these lines.  Formatters append to a
 * caller's struct buf; parsers fill caller-owned structs (released with
 * their _release() where they allocate) and fail with a status and a
 * reason, never logging.
 */
#ifndef CABLES_KEYDPROTO_H
#define CABLES_KEYDPROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "util.h"

#define KEYD_LINE_MAX 1024
#define KEYD_ADDRESSES_MAX 1000
#define KEYD_ADDRESSES_MAX_S "1000"
#define KEYD_REQUEST_MAX (1024 * 1024)
#define KEYD_REQUEST_MAX_S "1 MB"
#define KEYD_BATCH_MAX KEYD_ADDRESSES_MAX

enum keyd_request_type { KEYD_LOOKUP, KEYD_STATS, KEYD_IMPORT, KEYD_DELETE, KEYD_LIST, KEYD_CHECK };

struct keyd_request {
	enum keyd_request_type type;
	char **addresses;	/* as given (validated as addresses); NULL when there are none */
	size_t naddresses, addresses_room;
	char *format;		/* import: "smime" or "pgp" */
	char *fingerprint;	/* delete: a hex prefix of 8 to 64 digits, or NULL */
	bool force;		/* import: store a key that is not usable now */
	struct buf data;	/* import: the key in base64, the data= lines joined */
};

/*
 * Parse one request (its lines, without the final empty line, LF or CRLF
 * line ends).  Errors are CABLES_ERR_SYNTAX with the reason for the
 * "error=" reply.  keyd_request_release() frees what a parse filled in,
 * also after an error.
 */
cables_status keyd_request_parse(const char *text, size_t len, struct keyd_request *req, struct cables_err *err);
void keyd_request_release(struct keyd_request *req);

/* A request type's word on the wire ("lookup", ...), and back (false for a word that is not one). */
const char *keyd_request_type_name(enum keyd_request_type t);
bool keyd_request_type_parse(const char *word, enum keyd_request_type *out);

/*
 * Client side: send request (complete, with its final empty line) to the
 * keyd socket and read the reply up to its empty line into reply, all
 * within timeout_ms.  Nothing listening on the socket (no such socket,
 * connection refused) is CABLES_ERR_NOTFOUND; any other failure to reach
 * keyd, or no whole reply in time, is CABLES_ERR_IO; both with the reason.
 */
cables_status keyd_call(const char *socket_path, const struct buf *request, unsigned long timeout_ms,
    struct buf *reply, struct cables_err *err);

/* A value safe for one reply line: control characters become '?'. */
void keyd_sanitize(char *s);
/* Whether cables-keyd takes addr in a request (a valid address, not too long for a line). */
bool keyd_address_takes(const char *addr);

/*
 * The reply to a lookup, typed.  keyd formats its lines with
 * keyd_key_format() and keyd_result_format(); clients parse the whole reply
 * with keyd_lookup_reply_parse().  Each enum has a _name() (its word on the
 * wire) and a _parse() (false for a word that is not one).
 */
enum keyd_outcome { KEYD_OUTCOME_FOUND, KEYD_OUTCOME_NONE, KEYD_OUTCOME_TEMPFAIL, KEYD_OUTCOME_REJECT };
enum keyd_format { KEYD_FORMAT_SMIME, KEYD_FORMAT_PGP };
enum keyd_source {
	KEYD_SOURCE_GENERATED, KEYD_SOURCE_IMPORTED, KEYD_SOURCE_HARVESTED, KEYD_SOURCE_DNS_DNSSEC,
	KEYD_SOURCE_DNS_INSECURE, KEYD_SOURCE_PEER, KEYD_SOURCE_WKD,
	KEYD_SOURCE_PEER_EPOCH	/* a peer's epoch key (doc/key-exchange.md, "Forward secrecy") */
};
enum keyd_trust { KEYD_TRUST_LOCAL, KEYD_TRUST_DNSSEC, KEYD_TRUST_INSECURE };

const char *keyd_outcome_name(enum keyd_outcome o);
bool keyd_outcome_parse(const char *word, enum keyd_outcome *out);
const char *keyd_format_name(enum keyd_format f);
bool keyd_format_parse(const char *word, enum keyd_format *out);
const char *keyd_source_name(enum keyd_source s);
bool keyd_source_parse(const char *word, enum keyd_source *out);
const char *keyd_trust_name(enum keyd_trust t);
bool keyd_trust_parse(const char *word, enum keyd_trust *out);
/* How far a key from source is trusted: DNSSEC-validated, unvalidated DNS, else held locally. */
enum keyd_trust keyd_trust_of(enum keyd_source s);

/*
 * Client side: the requests, typed.  Each formatter appends one whole
 * request, its final empty line included, to out, as keyd_call() sends it.
 * They check what keyd_request_parse() checks, so that what a client
 * formats is what keyd reads: an address that is not one (addr_valid()),
 * a line longer than KEYD_LINE_MAX, no address or more than
 * KEYD_ADDRESSES_MAX, a fingerprint that is not a hex prefix of 8 to 64
 * digits, a request larger than KEYD_REQUEST_MAX are CABLES_ERR_ARG with
 * the reason, and out is left as it was.
 */
cables_status keyd_lookup_request_format(struct buf *out, const char *const *addrs, size_t n, struct cables_err *err);
/* The same addresses as a check (cache-only, see above). */
cables_status keyd_check_request_format(struct buf *out, const char *const *addrs, size_t n, struct cables_err *err);
/* key is the key itself (DER certificate, OpenPGP key), sent in base64. */
cables_status keyd_import_request_format(struct buf *out, const char *address, enum keyd_format format, bool force,
    const unsigned char *key, size_t len, struct cables_err *err);
/* fingerprint NULL: every key of address. */
cables_status keyd_delete_request_format(struct buf *out, const char *address, const char *fingerprint,
    struct cables_err *err);
void keyd_list_request_format(struct buf *out);
void keyd_stats_request_format(struct buf *out);

#define KEYD_ADDRESS_MAX 256
#define KEYD_REASON_MAX 512

/* "key=ADDRESS format=F source=S trust=T fingerprint=FPR expires=T" */
struct keyd_key {
	char address[KEYD_ADDRESS_MAX];
	enum keyd_format format;
	enum keyd_source source;
	enum keyd_trust trust;
	char fingerprint[65];
	long long expires;
};

/* Why a result without keys must not mean plaintext (see above). */
enum keyd_encrypting { KEYD_ENCRYPTING_NO, KEYD_ENCRYPTING_REMEMBERED, KEYD_ENCRYPTING_PUBLISHED };

const char *keyd_encrypting_name(enum keyd_encrypting e);
bool keyd_encrypting_parse(const char *word, enum keyd_encrypting *out);

/* "result=ADDRESS OUTCOME [encrypting=WHY [since=T]] [reason=...]", with the key= lines just before it. */
struct keyd_result {
	char address[KEYD_ADDRESS_MAX];
	enum keyd_outcome outcome;
	enum keyd_encrypting encrypting;	/* KEYD_ENCRYPTING_NO when the line has none */
	long long since;	/* remembered: since when the domain is; else 0 */
	char reason[KEYD_REASON_MAX];	/* "" when keyd gave none */
	struct keyd_key *keys;
	size_t nkeys;
};

struct keyd_lookup_reply {
	struct keyd_result *results;	/* in the order of the reply */
	size_t n;
};

/* Append one key= line, or one result= line (reason may be NULL; it is sanitized), to out. */
void keyd_key_format(struct buf *out, const struct keyd_key *k);
void keyd_result_format(struct buf *out, const char *address, enum keyd_outcome o, const char *reason);
/* The same with encrypting= (and since= for KEYD_ENCRYPTING_REMEMBERED); KEYD_ENCRYPTING_NO writes neither. */
void keyd_result_encrypting_format(struct buf *out, const char *address, enum keyd_outcome o,
    enum keyd_encrypting e, long long since, const char *reason);

/*
 * Parse the reply to a lookup (up to and without its empty line).  An
 * "error=" reply is CABLES_ERR_SYNTAX "cables-keyd refused the request:
 * REASON"; a line that is not a key= or result= line as above, or key=
 * lines without their result=, is CABLES_ERR_SYNTAX naming the line: a
 * peer that breaks the protocol is not read best-effort.
 * keyd_lookup_reply_release() frees what a parse filled in, also after an
 * error.
 */
cables_status keyd_lookup_reply_parse(const char *text, size_t len, struct keyd_lookup_reply *out,
    struct cables_err *err);
void keyd_lookup_reply_release(struct keyd_lookup_reply *r);

/*
 * The reply to request=list: one line per stored key,
 * "key=ADDRESS format=F source=S fingerprint=FPR not_before=T expires=T private=yes|no".
 * keyd formats each with keyd_stored_format(); keyd_list_reply_parse()
 * parses the whole reply with the same rules as a lookup reply's.
 */
struct keyd_stored {
	char address[KEYD_ADDRESS_MAX];
	enum keyd_format format;
	enum keyd_source source;
	char fingerprint[65];
	long long not_before, expires;
	bool private_key;	/* the store holds its private key too */
};

struct keyd_list_reply {
	struct keyd_stored *keys;
	size_t n;
};

void keyd_stored_format(struct buf *out, const struct keyd_stored *k);
cables_status keyd_list_reply_parse(const char *text, size_t len, struct keyd_list_reply *out, struct cables_err *err);
void keyd_list_reply_release(struct keyd_list_reply *r);

/*
 * The reply to request=import: "stored=ADDRESS format=F fingerprint=FPR
 * expires=T" (ADDRESS normalised, FPR and T as keyd derived them from the
 * key); to request=delete: "deleted=N".  Each parser takes the whole reply
 * (with or without its empty line) and refuses anything but that one line
 * with CABLES_ERR_SYNTAX, or an "error=" reply with CABLES_ERR_SYNTAX
 * "cables-keyd refused the request: REASON".
 */
struct keyd_import_reply {
	char address[KEYD_ADDRESS_MAX];
	enum keyd_format format;
	char fingerprint[65];
	long long expires;
};

void keyd_import_reply_format(struct buf *out, const struct keyd_import_reply *r);
cables_status keyd_import_reply_parse(const char *text, size_t len, struct keyd_import_reply *out,
    struct cables_err *err);
void keyd_delete_reply_format(struct buf *out, size_t deleted);
cables_status keyd_delete_reply_parse(const char *text, size_t len, size_t *deleted, struct cables_err *err);

/*
 * The reply to request=check: one line per address, in the order asked,
 * "check=ADDRESS STATE [retry=SECONDS] [reason=TEXT]".  keyd formats each
 * with keyd_check_format() (retry 0 and an empty reason are left out);
 * keyd_check_reply_parse() parses the whole reply with the same rules as a
 * lookup reply's (an "error=" reply or a line of another shape is
 * CABLES_ERR_SYNTAX).
 */
enum keyd_check_state { KEYD_CHECK_CACHED, KEYD_CHECK_LOOKUP, KEYD_CHECK_UNRESPONSIVE };

const char *keyd_check_state_name(enum keyd_check_state s);
bool keyd_check_state_parse(const char *word, enum keyd_check_state *out);

struct keyd_check {
	char address[KEYD_ADDRESS_MAX];
	enum keyd_check_state state;
	long long retry;	/* unresponsive: seconds the mark still lasts; else 0 */
	char reason[KEYD_REASON_MAX];	/* "" when keyd gave none */
};

struct keyd_check_reply {
	struct keyd_check *checks;
	size_t n;
};

void keyd_check_format(struct buf *out, const struct keyd_check *c);
cables_status keyd_check_reply_parse(const char *text, size_t len, struct keyd_check_reply *out,
    struct cables_err *err);
void keyd_check_reply_release(struct keyd_check_reply *r);

/*
 * The reply to request=stats: "name=value" counter lines (keyd's own
 * words: lookups=, from_dns=, exchange_answered=, ...), then one
 * "metric=SAMPLE" line per sample of the Prometheus text keyd serves on
 * KeydMetricsListen (the same renderer, so the same numbers):
 *
 *   lookups=12
 *   metric=cables_keyd_lookups_total{result="found"} 9
 *
 * keyd_stats_metrics_format() appends the metric= lines of an exposition
 * text (its samples; HELP and TYPE comments are left out).
 * keyd_stats_reply_parse() checks the whole reply (up to its empty line)
 * and puts the samples, one a line, in metrics; a line that is neither
 * "word=number" nor "metric=" with a sample "name[{labels}] number" is
 * CABLES_ERR_SYNTAX, an "error=" reply CABLES_ERR_SYNTAX "cables-keyd
 * refused the request: REASON".
 */
void keyd_stats_metrics_format(struct buf *out, const char *text, size_t len);
cables_status keyd_stats_reply_parse(const char *text, size_t len, struct buf *metrics, struct cables_err *err);

/* Any request may instead be answered with one "error=REASON" line (sanitized); keyd formats it with this. */
void keyd_error_format(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
