/*
 * peer - asking another domain's Cables server for keys
 * (doc/key-exchange.md): find it (a Peer line, else the DNSSEC-validated
 * SRV record _cables-keys._tcp.DOMAIN), learn its domain key (the Peer
 * line's ExchangeKey, else the DNSSEC-validated TXT record at the same
 * name), ask over HTTPS (libcurl; host addresses resolved through keyd's
 * own resolver, never the system's), and accept only an answer signed by
 * that key, for this request's nonce, in time.
 *
 * The outcome is "none here" (the domain runs no key server, or its zone
 * is unsigned: nothing to ask), an answer (its keys not yet checked as
 * keys), or a failure with the reason (unreachable, bad TLS, a signature
 * by another key, a replay...): the caller treats that as a temporary
 * failure, so mail under "require" waits rather than going out in
 * plaintext or to a substituted key.
 */
#ifndef CABLES_PEER_H
#define CABLES_PEER_H

#include <time.h>

#include "config.h"
#include "dns.h"
#include "exchange.h"

enum peer_status { PEER_NONE_HERE, PEER_ANSWERED, PEER_FAILED };

struct peer_outcome {
	enum peer_status status;
	struct x_answer answer;		/* PEER_ANSWERED */
	char reason[512];
};

/* Once, before threads start. */
void peer_global_init(void);

/*
 * Sign requests from now on as domain through signer (cables-keyholder,
 * which holds ExchangeKey; the struct is copied, what it points to must
 * outlive keyd's requests): answering servers that can bind the
 * key to domain (its DNSSEC-signed TXT record or a Peer pin) answer them
 * fully; unsigned requests get their anonymous limits.  Before threads start.
 */
void peer_sign_as(const struct x_signer *signer, const char *domain);

/*
 * The fingerprints of domain's key-exchange key from its DNSSEC-validated
 * TXT record _cables-keys._tcp.DOMAIN (at most max); false with the
 * reason when there is none that can be trusted.
 */
bool peer_domain_fingerprints(struct dns_resolver *res, const char *domain, time_t now, long long deadline,
    char (*fprs)[65], size_t max, size_t *n, char *why, size_t why_len);

/*
 * Ask domain's key server about addrs (all in domain, at most
 * X_ADDRESSES_MAX), done by deadline (monotonic_ms()): every DNS query and
 * the HTTPS request get only the time left.
 */
void peer_ask(const struct config *cfg, struct dns_resolver *res, const char *domain, const char *const *addrs,
    size_t n, time_t now, long long deadline, struct peer_outcome *out);
void peer_outcome_release(struct peer_outcome *o);

/* Shared with wkd.c: the milliseconds left until deadline (0: none), and host's address through res. */
unsigned int peer_left(long long deadline);
bool peer_address_of(struct dns_resolver *res, const char *host, time_t now, long long deadline, char *addr, size_t len,
    char *why, size_t why_len);

/*
 * One HTTPS request (peer_ask, wkd.c) to url on host:port, whose address is
 * looked up through res, never the system resolver: a GET, or a POST of
 * body (JSON) when body is not NULL.  The server's certificate is checked
 * against tls_pin when given (then no CA is asked), else against ca_file
 * (NULL: the system's CAs); all within deadline; an answer larger than max
 * fails.  True on a 200 with its body in out (always initialised; release
 * it); else why says what happened, starting with the URL.
 */
bool peer_https(struct dns_resolver *res, const char *url, const char *host, unsigned int port, const struct buf *body,
    const char *tls_pin, const char *ca_file, time_t now, long long deadline, size_t max, struct buf *out, char *why,
    size_t why_len);

/* Is name plain ASCII (an A-label form)?  Other names are not looked up over HTTPS. */
bool ascii_name(const char *name);

/* Does a Peer line name domain's key server? */
bool peer_configured(const struct config *cfg, const char *domain);

#endif
