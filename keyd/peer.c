/* peer - asking another domain's Cables server for keys; see peer.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "peer.h"
#include "util.h"

#define FPRS_MAX 4

/* Who this server signs its requests as (peer_sign_as), or no signer. */
static struct x_signer signer;
static bool signing;
static char sign_domain[256];

void
peer_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
peer_sign_as(const struct x_signer *s, const char *domain)
{
	signing = s != NULL && domain != NULL;
	if (signing) {
		signer = *s;
		strlcpy_c(sign_domain, domain, sizeof(sign_domain));
	}
}

void
peer_outcome_release(struct peer_outcome *o)
{
	x_answer_release(&o->answer);
}

/* The milliseconds left until deadline (at least 1), or 0 when none are. */
unsigned int
peer_left(long long deadline)
{
	long long l = deadline - monotonic_ms();

	return l <= 0 ? 0 : l > 600000 ? 600000 : (unsigned int)l;
}

/* Where to ask, and whom to believe. */
struct target {
	char url[600];
	char host[256];
	unsigned int port;
	char fprs[FPRS_MAX][65];
	size_t nfprs;
	const char *tls_pin;
};

static const struct peer *
configured(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->npeers; i++)
		if (strcasecmp(cfg->peers[i].domain, domain) == 0)
			return &cfg->peers[i];
	return NULL;
}

bool
ascii_name(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p >= 0x80)
			return false;
	return true;
}

bool
peer_configured(const struct config *cfg, const char *domain)
{
	return configured(cfg, domain) != NULL;
}

/* Host and port of an https:// URL. */
static bool
split_url(const char *url, char *host, size_t host_len, unsigned int *port)
{
	const char *h = url + 8, *end = h + strcspn(h, "/?#"), *colon;
	size_t n;

	if (strncmp(url, "https://", 8) != 0 || end == h)
		return false;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (close == NULL)
			return false;
		n = (size_t)(close - h - 1);
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon != NULL ? colon : end) - h);
	}
	if (n == 0 || n >= host_len)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = colon != NULL ? (unsigned int)strtoul(colon + 1, NULL, 10) : 443;
	return *port > 0 && *port < 65536;
}

/* The SRV record: PEER_NONE_HERE, PEER_FAILED, or PEER_ANSWERED with t's URL set. */
static enum peer_status
from_srv(struct dns_resolver *res, const char *domain, time_t now, long long deadline, struct target *t, char *why,
    size_t why_len)
{
	char name[300];
	struct dns_answer a;
	enum peer_status st = PEER_FAILED;
	unsigned long best = 70000;

	snprintf(name, sizeof(name), "_cables-keys._tcp.%s.", domain);
	if (dns_lookup_name(res, name, DNS_RR_SRV, now, peer_left(deadline), &a, NULL) != CABLES_OK) {
		snprintf(why, why_len, "%.200s: not a DNS name", name);
		return PEER_FAILED;
	}
	switch (a.status) {
	case DNS_SECURE_NONE:
		snprintf(why, why_len, "no key server (no SRV record, proven by NSEC)");
		st = PEER_NONE_HERE;
		break;
	case DNS_INSECURE:
		snprintf(why, why_len, "the SRV record is not DNSSEC-signed: not used");
		st = PEER_NONE_HERE;
		break;
	case DNS_BOGUS:
	case DNS_TEMPFAIL:
		snprintf(why, why_len, "SRV %s: %s", dns_status_name(a.status), a.reason);
		break;
	case DNS_SECURE:
		for (size_t i = 0; i < a.n; i++) {
			unsigned long prio, weight, port;
			char target[256];

			if (sscanf((const char *)a.recs[i].data, "%lu %lu %lu %255s", &prio, &weight, &port, target) != 4 ||
			    prio >= best || port == 0 || port > 65535)
				continue;
			best = prio;
			if (strcmp(target, ".") == 0) {
				t->host[0] = '\0';
				continue;
			}
			target[strcspn(target, " ")] = '\0';
			if (target[strlen(target) - 1] == '.')
				target[strlen(target) - 1] = '\0';
			strlcpy_c(t->host, target, sizeof(t->host));
			t->port = (unsigned int)port;
		}
		if (best == 70000 || t->host[0] == '\0') {
			snprintf(why, why_len, "the SRV record says there is no key server");
			st = PEER_NONE_HERE;
		} else {
			snprintf(t->url, sizeof(t->url), "https://%s:%u%s", t->host, t->port, X_PATH);
			st = PEER_ANSWERED;
		}
		break;
	}
	dns_answer_release(&a);
	return st;
}

/* The domain key's fingerprints from the DNSSEC-signed TXT record. */
static bool
from_txt(struct dns_resolver *res, const char *domain, time_t now, long long deadline, struct target *t, char *why,
    size_t why_len)
{
	char name[300];
	struct dns_answer a;

	snprintf(name, sizeof(name), "_cables-keys._tcp.%s.", domain);
	if (dns_lookup_name(res, name, DNS_RR_TXT, now, peer_left(deadline), &a, NULL) != CABLES_OK)
		return false;
	if (a.status != DNS_SECURE) {
		snprintf(why, why_len, "the domain key's TXT record: %s: %s", dns_status_name(a.status),
		    a.status == DNS_INSECURE ? "not DNSSEC-signed, not used" : a.reason);
		dns_answer_release(&a);
		return false;
	}
	for (size_t i = 0; i < a.n && t->nfprs < FPRS_MAX; i++)
		if (x_txt_fingerprint((const char *)a.recs[i].data, t->fprs[t->nfprs]))
			t->nfprs++;
	dns_answer_release(&a);
	if (t->nfprs == 0)
		snprintf(why, why_len, "no v=cables1 TXT record with the domain key's fingerprint");
	return t->nfprs > 0;
}

bool
peer_domain_fingerprints(struct dns_resolver *res, const char *domain, time_t now, long long deadline,
    char (*fprs)[65], size_t max, size_t *n, char *why, size_t why_len)
{
	struct target t;

	memset(&t, 0, sizeof(t));
	*n = 0;
	if (!ascii_name(domain)) {
		snprintf(why, why_len, "an internationalised domain name: not looked up");
		return false;
	}
	if (!from_txt(res, domain, now, deadline, &t, why, why_len))
		return false;
	for (size_t i = 0; i < t.nfprs && *n < max; i++)
		strlcpy_c(fprs[(*n)++], t.fprs[i], 65);
	return *n > 0;
}

/* host's address through keyd's resolver (a numeric host is itself). */
bool
peer_address_of(struct dns_resolver *res, const char *host, time_t now, long long deadline, char *addr, size_t len,
    char *why, size_t why_len)
{
	unsigned char tmp[16];
	char name[300];

	if (inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1) {
		strlcpy_c(addr, host, len);
		return true;
	}
	snprintf(name, sizeof(name), "%s.", host);
	for (int kind = DNS_RR_A; kind <= DNS_RR_AAAA; kind++) {
		struct dns_answer a;
		bool ok;

		if (peer_left(deadline) == 0 ||
		    dns_lookup_name(res, name, (enum dns_rr_kind)kind, now, peer_left(deadline), &a, NULL) != CABLES_OK)
			break;
		/* The answer's signature is what is trusted, not the address: an unsigned address will do. */
		ok = (a.status == DNS_SECURE || a.status == DNS_INSECURE) && a.n > 0;
		if (ok)
			strlcpy_c(addr, (const char *)a.recs[0].data, len);
		else
			snprintf(why, why_len, "%s has no address: %s", host, a.reason);
		dns_answer_release(&a);
		if (ok)
			return true;
	}
	return false;
}

struct sink {
	struct buf *data;
	size_t max;
	bool too_big;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (s->data->len + size * n > s->max) {
		s->too_big = true;
		return 0;
	}
	buf_append(s->data, p, size * n);
	return size * n;
}

bool
peer_https(struct dns_resolver *res, const char *url, const char *host, unsigned int port, const struct buf *body,
    const char *tls_pin, const char *ca_file, time_t now, long long deadline, size_t max, struct buf *out, char *why,
    size_t why_len)
{
	char addr[INET6_ADDRSTRLEN + 2], entry[400], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	struct sink sink = { out, max, false };
	long status = 0;
	CURLcode rc;
	CURL *curl;

	buf_init(out);
	if (!peer_address_of(res, host, now, deadline, addr, sizeof(addr), why, why_len))
		return false;
	if (peer_left(deadline) < 50 || (curl = curl_easy_init()) == NULL) {
		snprintf(why, why_len, "no time left within LookupTimeout to ask %.200s", url);
		return false;
	}
	/* A host name is pinned to the address our resolver found; a numeric host needs nothing. */
	if (strcmp(addr, host) != 0) {
		snprintf(entry, sizeof(entry), "%s:%u:%s%s%s", host, port, strchr(addr, ':') != NULL ? "[" : "", addr,
		    strchr(addr, ':') != NULL ? "]" : "");
		resolve = curl_slist_append(resolve, entry);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Accept: application/json");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body->len);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)peer_left(deadline));
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cables-keyd/" PACKAGE_VERSION);
	if (tls_pin != NULL) {
		/* The pinned key is the server's identity: no CA is asked. */
		curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, tls_pin);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (ca_file != NULL) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
	}
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	if (rc != CURLE_OK) {
		if (sink.too_big)
			snprintf(why, why_len, "%.200s: the answer is larger than %zu KB", url, max / 1024);
		else
			snprintf(why, why_len, "%.200s: %s", url, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	} else if (status != 200) {
		buf_append(out, "", 0);
		snprintf(why, why_len, "%.200s: HTTP %ld %.100s", url, status, out->data != NULL ? out->data : "");
	}
	return rc == CURLE_OK && status == 200;
}

void
peer_ask(const struct config *cfg, struct dns_resolver *res, const char *domain, const char *const *addrs, size_t n,
    time_t now, long long deadline, struct peer_outcome *out)
{
	const struct peer *p = configured(cfg, domain);
	struct target t;
	struct x_request req;
	struct buf body, answer;
	struct cables_err err;

	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	out->status = PEER_FAILED;
	if (!ascii_name(domain)) {
		/* libcurl would turn it into punycode and ask the system resolver: not looked up at all. */
		out->status = PEER_NONE_HERE;
		snprintf(out->reason, sizeof(out->reason), "an internationalised domain name: no key server is asked");
		return;
	}
	if (p != NULL) {
		strlcpy_c(t.url, p->url, sizeof(t.url));
		if (p->fpr[0] != '\0')
			strlcpy_c(t.fprs[t.nfprs++], p->fpr, sizeof(t.fprs[0]));
		t.tls_pin = p->tls_pin;
		if (!split_url(t.url, t.host, sizeof(t.host), &t.port)) {
			snprintf(out->reason, sizeof(out->reason), "Peer %s: bad URL", domain);
			return;
		}
	} else if ((out->status = from_srv(res, domain, now, deadline, &t, out->reason, sizeof(out->reason))) !=
	    PEER_ANSWERED) {
		return;
	}
	out->status = PEER_FAILED;
	if (t.nfprs == 0 && !from_txt(res, domain, now, deadline, &t, out->reason, sizeof(out->reason)))
		return;
	if (!signing)
		x_request_make(domain, addrs, n, &req, &body);
	else if (x_request_make_signed(domain, addrs, n, sign_domain, &signer, now, &req, &body, &err) != CABLES_OK) {
		snprintf(out->reason, sizeof(out->reason), "%s", err.msg);
		buf_release(&body);
		x_request_release(&req);
		return;
	}
	if (!peer_https(res, t.url, t.host, t.port, &body, t.tls_pin, cfg->exchange_ca_file, now, deadline,
	    X_ANSWER_MAX, &answer, out->reason, sizeof(out->reason))) {
		/* the reason is said */
	} else if (x_answer_verify(answer.data != NULL ? answer.data : "", answer.len, &req, (const char (*)[65])t.fprs,
	    t.nfprs, now, &out->answer, &err) != CABLES_OK) {
		snprintf(out->reason, sizeof(out->reason), "%.200s: %s", t.url, err.msg);
	} else {
		out->status = PEER_ANSWERED;
		snprintf(out->reason, sizeof(out->reason), "answered by %.200s, signed by %.200s's key", t.url, domain);
	}
	buf_release(&answer);
	buf_release(&body);
	x_request_release(&req);
	for (char *c = out->reason; *c != '\0'; c++)
		if ((unsigned char)*c < 32)
			*c = '?';
}
