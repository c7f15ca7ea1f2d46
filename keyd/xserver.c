/* xserver - the key-exchange HTTPS endpoint; see xserver.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dns.h"
#include "exchange.h"
#include "log.h"
#include "lookup.h"
#include "peer.h"
#include "ratelimit.h"
#include "util.h"
#include "metrics.h"
#include "xserver.h"

#define CLIENT_SLOTS 4096
#define SIGNERS 256		/* asking domains whose keys are remembered */
#define SIGNER_FPRS 4
#define SIGNER_TTL 600		/* seconds a domain's key fingerprints are trusted without asking DNS again */
#define SIGNER_NEG_TTL 60	/* and that a domain has none */

/* An asking domain's key fingerprints (from a Peer pin or its DNSSEC-signed TXT record). */
struct signer {
	char domain[256];	/* "" when free */
	char fprs[SIGNER_FPRS][65];
	size_t n;		/* 0: none could be trusted */
	double until;
};

/* A Peer line's pin, copied: the configuration may be replaced while the endpoint runs. */
struct pin {
	char domain[256];
	char fpr[65];
};

struct xserver {
	struct MHD_Daemon *d;
	int fd;				/* the listening socket until the daemon has it */
	struct keyd *keyd;
	struct x_signer signer;		/* cables-keyholder, with ExchangeKey */
	char *cert_pem, *key_pem;
	struct ratelimit *per_ip;	/* ExchangeRateLimit, per client address: every request */
	struct ratelimit *per_domain;	/* ExchangeRateLimit, per asking domain: signed requests */
	struct ratelimit *anon_ip;	/* ExchangeAnonymousRateLimit, per client address: unsigned requests */
	size_t anon_addresses;		/* ExchangeAnonymousAddresses: answered per unsigned request; 0: none */
	struct dns_resolver *res;	/* for asking domains' TXT records */
	unsigned int lookup_ms;		/* LookupTimeout */
	struct pin *pins;
	size_t npins;
	pthread_mutex_t lock;		/* the rate limits, signers and counters */
	struct signer signers[SIGNERS];
	bool signer_lookup;		/* a DNS lookup for an asking domain is under way */
	unsigned long answered, addresses, refused, limited, signed_answered, signed_unbound;
};

/* One request's body, collected across calls. */
struct body {
	struct buf data;
	bool too_big;
};

static char *
slurp_text(const char *path, struct cables_err *err)
{
	FILE *fp = fopen(path, "r");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (fp == NULL) {
		cables_fail(err, CABLES_ERR_IO, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len < 1024 * 1024)
		buf_append(&b, chunk, n);
	fclose(fp);
	buf_append(&b, "", 0);
	return b.data;
}

static double
monotonic_s(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* May ip ask now?  Its own token bucket; when the table has no room for a new client, no. */
static bool
allowed(struct xserver *x, const char *ip)
{
	enum ratelimit_verdict v;

	pthread_mutex_lock(&x->lock);
	v = ratelimit_take(x->per_ip, ip, monotonic_s());
	if (v != RATELIMIT_OK)
		x->limited++;
	pthread_mutex_unlock(&x->lock);
	return v == RATELIMIT_OK;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *text, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "POST");
	if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(r, "Retry-After", "30");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* {"error": reason}, the reason with anything odd replaced. */
static enum MHD_Result
refuse(struct xserver *x, struct MHD_Connection *c, unsigned int status, const char *reason)
{
	char text[400], clean[300];
	size_t n = 0;

	for (const char *p = reason; *p != '\0' && n + 1 < sizeof(clean); p++)
		clean[n++] = (*p >= 32 && *p < 127 && *p != '"' && *p != '\\') ? *p : '?';
	clean[n] = '\0';
	snprintf(text, sizeof(text), "{\"error\":\"%s\"}", clean);
	pthread_mutex_lock(&x->lock);
	x->refused++;
	pthread_mutex_unlock(&x->lock);
	return reply(c, status, text, strlen(text));
}

static void
client_ip(struct MHD_Connection *c, char *ip, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	strlcpy_c(ip, "?", len);
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip, (socklen_t)len);
	else if (sa != NULL && sa->sa_family == AF_INET6) {
		/* An IPv6 client is its /64: one host has a whole one. */
		struct in6_addr a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, ip, (socklen_t)len);
	}
}

/* The slot of domain in the signers cache. */
static struct signer *
signer_slot(struct xserver *x, const char *domain)
{
	size_t h = 5381;

	for (const char *p = domain; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return &x->signers[h % SIGNERS];
}

/*
 * The fingerprints that may sign for domain: its Peer pin, else its
 * DNSSEC-signed TXT record (remembered for SIGNER_TTL, its absence for
 * SIGNER_NEG_TTL; asked within LookupTimeout, outside the lock).  One
 * lookup at a time: signed requests naming domains with slow DNS cannot
 * hold every thread of the endpoint; while one is under way, others find
 * nothing (and are answered as anonymous).
 */
static size_t
signer_fingerprints(struct xserver *x, const char *domain, time_t now, char (*fprs)[65])
{
	struct signer *s, fresh;
	char why[256];
	double t = monotonic_s();
	size_t n = 0;

	for (size_t i = 0; i < x->npins; i++)
		if (strcmp(x->pins[i].domain, domain) == 0 && x->pins[i].fpr[0] != '\0' && n < SIGNER_FPRS)
			strlcpy_c(fprs[n++], x->pins[i].fpr, 65);
	if (n > 0)
		return n;
	pthread_mutex_lock(&x->lock);
	s = signer_slot(x, domain);
	if (strcmp(s->domain, domain) == 0 && s->until > t) {
		for (n = 0; n < s->n; n++)
			strlcpy_c(fprs[n], s->fprs[n], 65);
		pthread_mutex_unlock(&x->lock);
		return n;
	}
	if (x->signer_lookup) {
		pthread_mutex_unlock(&x->lock);
		return 0;
	}
	x->signer_lookup = true;
	pthread_mutex_unlock(&x->lock);
	memset(&fresh, 0, sizeof(fresh));
	strlcpy_c(fresh.domain, domain, sizeof(fresh.domain));
	if (!peer_domain_fingerprints(x->res, domain, now, monotonic_ms() + x->lookup_ms, fresh.fprs, SIGNER_FPRS,
	    &fresh.n, why, sizeof(why)))
		fresh.n = 0;
	fresh.until = t + (fresh.n > 0 ? SIGNER_TTL : SIGNER_NEG_TTL);
	pthread_mutex_lock(&x->lock);
	*signer_slot(x, domain) = fresh;
	x->signer_lookup = false;
	pthread_mutex_unlock(&x->lock);
	for (n = 0; n < fresh.n; n++)
		strlcpy_c(fprs[n], fresh.fprs[n], 65);
	return n;
}

/* Is req signed by its asking domain's key, in time? */
static bool
signer_bound(struct xserver *x, const struct x_request *req, time_t now)
{
	char fprs[SIGNER_FPRS][65];
	size_t n;
	struct cables_err err;

	if (!req->is_signed)
		return false;
	n = signer_fingerprints(x, req->from, now, fprs);
	return x_request_check_signer(req, (const char (*)[65])fprs, n, now, &err) == CABLES_OK;
}

static bool
take(struct xserver *x, struct ratelimit *rl, const char *key)
{
	enum ratelimit_verdict v;

	pthread_mutex_lock(&x->lock);
	v = ratelimit_take(rl, key, monotonic_s());
	if (v != RATELIMIT_OK)
		x->limited++;
	pthread_mutex_unlock(&x->lock);
	return v == RATELIMIT_OK;
}

/*
 * Who asks decides how much is answered: a request signed by its asking
 * domain's key is answered for every address, within that domain's rate;
 * any other (unsigned, or signed by a key we cannot bind to its domain) is
 * anonymous: the first ExchangeAnonymousAddresses addresses, within the
 * client's anonymous rate.  0: the status to refuse with, and why.
 */
static unsigned int
admit(struct xserver *x, struct MHD_Connection *c, struct x_request *req, time_t now, const char **why)
{
	char ip[INET6_ADDRSTRLEN];
	bool bound = signer_bound(x, req, now);

	pthread_mutex_lock(&x->lock);
	if (bound)
		x->signed_answered++;
	else if (req->is_signed)
		x->signed_unbound++;
	pthread_mutex_unlock(&x->lock);
	if (bound) {
		*why = "too many requests from your domain";
		return take(x, x->per_domain, req->from) ? 0 : MHD_HTTP_TOO_MANY_REQUESTS;
	}
	if (x->anon_addresses == 0) {
		*why = "only requests signed by the asking domain's exchange key are answered here";
		return MHD_HTTP_FORBIDDEN;
	}
	client_ip(c, ip, sizeof(ip));
	if (!take(x, x->anon_ip, ip)) {
		*why = "too many unsigned requests: sign them with your domain's exchange key";
		return MHD_HTTP_TOO_MANY_REQUESTS;
	}
	while (req->n > x->anon_addresses)
		free(req->addresses[--req->n]);
	return 0;
}

static enum MHD_Result
answer(struct xserver *x, struct MHD_Connection *c, struct body *b)
{
	struct x_request req;
	struct x_answer results;
	struct cables_err err;
	struct buf out;
	time_t now = time(NULL);
	bool any_local = false, incomplete = false;
	const char *why = NULL;
	unsigned int status;
	enum MHD_Result ret;

	if (x_request_parse(b->data.data != NULL ? b->data.data : "", b->data.len, &req, &err) != CABLES_OK)
		return refuse(x, c, MHD_HTTP_BAD_REQUEST, err.msg);
	if ((status = admit(x, c, &req, now, &why)) != 0) {
		x_request_release(&req);
		return refuse(x, c, status, why);
	}
	results.results = xcalloc(req.n + 1, sizeof(*results.results));
	results.n = req.n;
	for (size_t i = 0; i < req.n; i++)
		any_local |= keyd_public_keys(x->keyd, req.addresses[i], now, &results.results[i], &incomplete);
	if (incomplete) {
		x_answer_release(&results);
		x_request_release(&req);
		return refuse(x, c, MHD_HTTP_SERVICE_UNAVAILABLE, "the key process could not vouch for an epoch key");
	}
	if (!any_local) {
		x_answer_release(&results);
		x_request_release(&req);
		return refuse(x, c, MHD_HTTP_NOT_FOUND, "not a domain served here");
	}
	if (x_answer_make(&x->signer, &req, &results, now, &out, &err) != CABLES_OK) {
		x_answer_release(&results);
		x_request_release(&req);
		return refuse(x, c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
	}
	pthread_mutex_lock(&x->lock);
	x->answered++;
	x->addresses += req.n;
	pthread_mutex_unlock(&x->lock);
	ret = reply(c, MHD_HTTP_OK, out.data, out.len);
	buf_release(&out);
	x_answer_release(&results);
	x_request_release(&req);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **state)
{
	struct xserver *x = cls;
	struct body *b = *state;
	char ip[INET6_ADDRSTRLEN];

	if (b == NULL) {
		/* The first call: the headers.  Refuse early what needs no body. */
		if (strcmp(url, X_PATH) != 0)
			return refuse(x, c, MHD_HTTP_NOT_FOUND, "no such resource");
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return refuse(x, c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
		client_ip(c, ip, sizeof(ip));
		if (!allowed(x, ip))
			return refuse(x, c, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests");
		b = xcalloc(1, sizeof(*b));
		buf_init(&b->data);
		*state = b;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (b->data.len + *upload_size > X_REQUEST_MAX)
			b->too_big = true;
		else
			buf_append(&b->data, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (b->too_big)
		return refuse(x, c, MHD_HTTP_CONTENT_TOO_LARGE, "request larger than 16 KiB");
	return answer(x, c, b);
}

static void
completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
	struct body *b = *state;

	if (b != NULL) {
		buf_release(&b->data);
		free(b);
		*state = NULL;
	}
}

cables_status
xserver_prepare(const struct config *cfg, const struct x_signer *signer, struct xserver **out,
    struct cables_err *err)
{
	struct xserver *x;
	struct sockaddr_storage sa;
	socklen_t salen;
	int one = 1;

	*out = NULL;
	if (cfg->exchange_cert == NULL || cfg->exchange_cert_key == NULL || cfg->exchange_key == NULL)
		return cables_fail(err, CABLES_ERR_ARG,
		    "ExchangeListen needs ExchangeCertificate, ExchangeCertificateKey and ExchangeKey");
	if (!inet_spec_parse(cfg->exchange_listen, &sa, &salen))
		return cables_fail(err, CABLES_ERR_ARG, "ExchangeListen %s: not inet:PORT@ADDRESS", cfg->exchange_listen);
	x = xcalloc(1, sizeof(*x));
	x->fd = -1;
	x->signer = *signer;
	x->per_ip = ratelimit_new(CLIENT_SLOTS, (double)cfg->exchange_rate_limit / 60,
	    (double)(cfg->exchange_rate_limit / 2));
	x->per_domain = ratelimit_new(CLIENT_SLOTS, (double)cfg->exchange_rate_limit / 60,
	    (double)(cfg->exchange_rate_limit / 2));
	x->anon_ip = ratelimit_new(CLIENT_SLOTS, (double)cfg->exchange_anon_rate_limit / 60,
	    (double)(cfg->exchange_anon_rate_limit / 2));
	x->anon_addresses = cfg->exchange_anon_addresses;
	x->lookup_ms = (unsigned int)cfg->lookup_timeout_ms;
	x->pins = xcalloc(cfg->npeers + 1, sizeof(*x->pins));
	for (size_t i = 0; i < cfg->npeers; i++) {
		strlcpy_c(x->pins[x->npins].domain, cfg->peers[i].domain, sizeof(x->pins[0].domain));
		strlcpy_c(x->pins[x->npins++].fpr, cfg->peers[i].fpr, sizeof(x->pins[0].fpr));
	}
	pthread_mutex_init(&x->lock, NULL);
	if (dns_resolver_new(cfg->resolver, cfg->dnssec_anchor, x->lookup_ms, &x->res, err) != CABLES_OK) {
		xserver_stop(x);
		return CABLES_ERR_IO;
	}
	if ((x->cert_pem = slurp_text(cfg->exchange_cert, err)) == NULL ||
	    (x->key_pem = slurp_text(cfg->exchange_cert_key, err)) == NULL) {
		xserver_stop(x);
		return CABLES_ERR_IO;
	}
	if ((x->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(x->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(x->fd, (struct sockaddr *)&sa, salen) != 0 || listen(x->fd, 64) != 0) {
		cables_fail(err, CABLES_ERR_IO, "ExchangeListen %s: %s", cfg->exchange_listen, strerror(errno));
		xserver_stop(x);
		return CABLES_ERR_IO;
	}
	*out = x;
	return CABLES_OK;
}

cables_status
xserver_start(struct xserver *x, struct keyd *k, struct cables_err *err)
{
	x->keyd = k;
	x->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, handle, x,
	    MHD_OPTION_LISTEN_SOCKET, x->fd,
	    MHD_OPTION_HTTPS_MEM_CERT, x->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, x->key_pem,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_NOTIFY_COMPLETED, completed, x,
	    MHD_OPTION_END);
	if (x->d == NULL)
		return cables_fail(err, CABLES_ERR_IO, "the key-exchange endpoint does not start (the TLS certificate "
		    "and key do not load?)");
	x->fd = -1;	/* the daemon's now */
	return CABLES_OK;
}

void
xserver_stop(struct xserver *x)
{
	if (x == NULL)
		return;
	if (x->d != NULL)
		MHD_stop_daemon(x->d);
	if (x->fd >= 0)
		close(x->fd);
	free(x->cert_pem);
	if (x->key_pem != NULL)
		OPENSSL_cleanse(x->key_pem, strlen(x->key_pem));
	free(x->key_pem);
	ratelimit_free(x->per_ip);
	ratelimit_free(x->per_domain);
	ratelimit_free(x->anon_ip);
	dns_resolver_free(x->res);
	free(x->pins);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

void
xserver_stats(struct xserver *x, struct buf *out)
{
	if (x == NULL)
		return;
	pthread_mutex_lock(&x->lock);
	buf_printf(out, "exchange_answered=%lu\nexchange_addresses=%lu\nexchange_refused=%lu\nexchange_rate_limited=%lu\n"
	    "exchange_signed=%lu\nexchange_signed_unbound=%lu\n",
	    x->answered, x->addresses, x->refused, x->limited, x->signed_answered, x->signed_unbound);
	pthread_mutex_unlock(&x->lock);
}

void
xserver_metrics(struct xserver *x, struct buf *out)
{
	unsigned long answered, refused, limited, addresses, bound, unbound;

	if (x == NULL)
		return;
	pthread_mutex_lock(&x->lock);
	answered = x->answered;
	refused = x->refused;
	limited = x->limited;
	addresses = x->addresses;
	bound = x->signed_answered;
	unbound = x->signed_unbound;
	pthread_mutex_unlock(&x->lock);
	metric_family(out, "cables_keyd_exchange_requests_total", "counter",
	    "Key-exchange requests (ExchangeListen) answered, or refused (bad, unknown domain, rate-limited).");
	metric_sample(out, "cables_keyd_exchange_requests_total", "result=\"answered\"", answered);
	metric_sample(out, "cables_keyd_exchange_requests_total", "result=\"refused\"", refused);
	metric_family(out, "cables_keyd_exchange_rate_limited_total", "counter",
	    "Key-exchange requests over a rate limit (per client, per asking domain, anonymous).");
	metric_sample(out, "cables_keyd_exchange_rate_limited_total", "", limited);
	metric_family(out, "cables_keyd_exchange_addresses_total", "counter",
	    "Addresses asked about in answered key-exchange requests.");
	metric_sample(out, "cables_keyd_exchange_addresses_total", "", addresses);
	metric_family(out, "cables_keyd_exchange_signed_requests_total", "counter",
	    "Signed key-exchange requests, by whether the signature was bound to the asking domain.");
	metric_sample(out, "cables_keyd_exchange_signed_requests_total", "bound=\"yes\"", bound);
	metric_sample(out, "cables_keyd_exchange_signed_requests_total", "bound=\"no\"", unbound);
}
