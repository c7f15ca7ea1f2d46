/* dns - OPENPGPKEY, SMIMEA and other lookups, validated by libunbound; see dns.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unbound.h>

#include "dns.h"
#include "util.h"

#define DNS_KIND_TEXT 16	/* copy_records(): any other record type, as text */

/*
 * The resolver: one libunbound context (its own thread does the network
 * work), and a dispatcher thread of ours that reads the context's answers
 * (ub_process) and wakes the lookups waiting for them.
 */
struct dns_resolver {
	struct ub_ctx *ctx;
	unsigned int timeout_ms;
	pthread_mutex_t lock;	/* the pending lookups' done flags, started */
	pthread_cond_t answered;	/* broadcast when a lookup's answer is in */
	pthread_t dispatcher;
	bool started;		/* the dispatcher runs (started on the first lookup) */
	int wake[2];		/* a pipe: a byte on it stops the dispatcher */
};

/* One lookup in flight, on its caller's stack. */
struct pending {
	struct dns_resolver *r;
	bool done;
	bool timed_out;		/* no answer within the time allowed (not an error of ours) */
	int err;		/* libunbound's error, 0 when result is set */
	struct ub_result *result;
};

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_SECURE:	return "secure";
	case DNS_SECURE_NONE:	return "secure-none";
	case DNS_INSECURE:	return "insecure";
	case DNS_BOGUS:		return "bogus";
	case DNS_TEMPFAIL:	return "tempfail";
	}
	return "?";
}

void
dns_answer_release(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->recs[i].data);
	free(a->recs);
	a->recs = NULL;
	a->n = 0;
}

static cables_status
read_anchors(const char *path, ldns_rr_list **out, struct cables_err *err)
{
	FILE *fp = fopen(path, "r");
	ldns_rr_list *list;
	int line = 1;

	if (fp == NULL)
		return cables_fail(err, CABLES_ERR_IO, "DNSSEC trust anchors %s: %s", path, strerror(errno));
	list = ldns_rr_list_new();
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, NULL, NULL, NULL, &line);

		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL || s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		if (s != LDNS_STATUS_OK) {
			if (feof(fp))
				break;
			fclose(fp);
			ldns_rr_list_deep_free(list);
			return cables_fail(err, CABLES_ERR_SYNTAX, "DNSSEC trust anchors %s:%d: %s", path, line,
			    ldns_get_errorstr_by_id(s));
		}
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DS && ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNSKEY) {
			ldns_rr_free(rr);
			continue;
		}
		ldns_rr_list_push_rr(list, rr);
	}
	fclose(fp);
	if (ldns_rr_list_rr_count(list) == 0) {
		ldns_rr_list_deep_free(list);
		return cables_fail(err, CABLES_ERR_SYNTAX, "DNSSEC trust anchors %s: no DS or DNSKEY record", path);
	}
	*out = list;
	return CABLES_OK;
}

/*
 * The anchors as records for unbound (which would read the file itself, but
 * only at the first lookup: reading it here reports a bad file at start
 * and at "-n", with its line).
 */
static cables_status
add_anchors(struct ub_ctx *ctx, const char *path, struct cables_err *err)
{
	ldns_rr_list *list = NULL;
	cables_status st;
	int e = 0;

	if ((st = read_anchors(path, &list, err)) != CABLES_OK)
		return st;
	for (size_t i = 0; i < ldns_rr_list_rr_count(list) && e == 0; i++) {
		char *text = ldns_rr2str(ldns_rr_list_rr(list, i));

		e = text != NULL ? ub_ctx_add_ta(ctx, text) : UB_NOMEM;
		free(text);
	}
	ldns_rr_list_deep_free(list);
	if (e != 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "DNSSEC trust anchors %s: %s", path, ub_strerror(e));
	return CABLES_OK;
}

static FILE *devnull;

static void
open_devnull(void)
{
	devnull = fopen("/dev/null", "w");
}

/*
 * unbound's settings for validating behind a forwarder that may be an
 * authoritative server (nsd serving a whole tree, in the tests): the
 * validator on, nothing permissive, loopback servers allowed, a server
 * that failed probed again soon, no logging, "test." asked like any other
 * name.
 */
static cables_status
set_options(struct ub_ctx *ctx, struct cables_err *err)
{
	static const char *const opts[][2] = {
		{ "module-config:", "validator iterator" },
		{ "val-permissive-mode:", "no" },
		{ "harden-dnssec-stripped:", "yes" },
		/*
		 * No answers synthesized from cached NSEC records (RFC 8198): then
		 * a random name is never answered from our cache, and dns_probe()
		 * learns whether this resolver, its queue, its forwarder and the
		 * forwarder's opinion of it, answers right now.  keyd caches "no
		 * key" itself, and a forwarding server may still synthesize.
		 */
		{ "aggressive-nsec:", "no" },
		{ "qname-minimisation:", "no" },
		{ "edns-buffer-size:", "1232" },
		{ "do-not-query-localhost:", "no" },
		{ "trust-anchor-signaling:", "no" },
		{ "root-key-sentinel:", "no" },
		{ "infra-keep-probing:", "yes" },
		{ "infra-host-ttl:", "60" },
		{ "verbosity:", "0" },
		{ "val-log-level:", "2" },
		/*
		 * NSEC3 denials are checked up to RFC 5155's largest iteration
		 * count: unbound's default (150, as RFC 9276 allows) calls a zone
		 * with more "insecure", and a replayed genuine denial from such a
		 * zone would then make a signed domain look unsigned (a key
		 * swapped under "DNSSEC prefer", none found under "require").
		 * Above 2500 classify() refuses the answer.
		 */
		{ "val-nsec3-keysize-iterations:", "1024 2500 2048 2500 4096 2500" },
		{ "use-syslog:", "no" },
		/* unbound answers "test." (RFC 6761) itself unless told not to; test trees live there. */
		{ "local-zone:", "test. transparent" },
	};
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int e;

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if ((e = ub_ctx_set_option(ctx, opts[i][0], opts[i][1])) != 0)
			return cables_fail(err, CABLES_ERR_INTERNAL, "libunbound option %s %s: %s", opts[i][0],
			    opts[i][1], ub_strerror(e));
	}
	/* unbound's log target is global to the process: one /dev/null for all resolvers. */
	pthread_once(&once, open_devnull);
	if (devnull != NULL)
		ub_ctx_debugout(ctx, devnull);
	if ((e = ub_ctx_async(ctx, 1)) != 0)
		return cables_fail(err, CABLES_ERR_INTERNAL, "libunbound threads: %s", ub_strerror(e));
	return CABLES_OK;
}

/* The server to forward to: server ("ADDRESS[@PORT]"), or those of /etc/resolv.conf. */
static cables_status
set_server(struct ub_ctx *ctx, const char *server, struct cables_err *err)
{
	const char *at;
	char *end;
	unsigned long port;
	int e;

	if (server == NULL) {
		if ((e = ub_ctx_resolvconf(ctx, NULL)) != 0)
			return cables_fail(err, CABLES_ERR_IO, "resolver from /etc/resolv.conf: %s",
			    e == UB_READFILE ? strerror(errno) : ub_strerror(e));
		return CABLES_OK;
	}
	if ((at = strchr(server, '@')) != NULL) {
		port = strtoul(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
			return cables_fail(err, CABLES_ERR_ARG, "Resolver %s: bad port", server);
	}
	if ((e = ub_ctx_set_fwd(ctx, server)) != 0)
		return cables_fail(err, CABLES_ERR_ARG, "Resolver %s: not a numeric address", server);
	return CABLES_OK;
}

cables_status
dns_resolver_new(const char *server, const char *anchors, unsigned int timeout_ms, struct dns_resolver **out,
    struct cables_err *err)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	pthread_condattr_t ca;
	cables_status st;

	*out = NULL;
	r->timeout_ms = timeout_ms;
	r->wake[0] = r->wake[1] = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->answered, &ca);
	pthread_condattr_destroy(&ca);
	if ((r->ctx = ub_ctx_create()) == NULL) {
		dns_resolver_free(r);
		return cables_fail(err, CABLES_ERR_INTERNAL, "libunbound: cannot create a context");
	}
	if ((st = set_options(r->ctx, err)) != CABLES_OK || (st = set_server(r->ctx, server, err)) != CABLES_OK ||
	    (st = add_anchors(r->ctx, anchors, err)) != CABLES_OK) {
		dns_resolver_free(r);
		return st;
	}
	if (pipe2(r->wake, O_CLOEXEC) != 0) {
		dns_resolver_free(r);
		return cables_fail(err, CABLES_ERR_IO, "pipe: %s", strerror(errno));
	}
	*out = r;
	return CABLES_OK;
}

cables_status
dns_resolver_cap_ttl(struct dns_resolver *r, unsigned long seconds, struct cables_err *err)
{
	char v[32];
	int e;

	snprintf(v, sizeof(v), "%lu", seconds);
	if ((e = ub_ctx_set_option(r->ctx, "cache-max-ttl:", v)) != 0 ||
	    (e = ub_ctx_set_option(r->ctx, "cache-max-negative-ttl:", v)) != 0)
		return cables_fail(err, CABLES_ERR_INTERNAL, "libunbound cache TTL %s: %s", v, ub_strerror(e));
	return CABLES_OK;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	if (r->started) {
		(void)write_fully(r->wake[1], "x", 1);
		pthread_join(r->dispatcher, NULL);
	}
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	if (r->wake[0] >= 0) {
		close(r->wake[0]);
		close(r->wake[1]);
	}
	pthread_cond_destroy(&r->answered);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

char *
dns_owner_name(const char *local_part, const char *domain, enum dns_key_type t)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[57];
	size_t dlen = strlen(domain);

	if (!EVP_Digest(local_part, strlen(local_part), md, &mdlen, EVP_sha256(), NULL) || mdlen < 28)
		return NULL;
	hex_encode(md, 28, hex);
	hex[56] = '\0';
	return xasprintf("%s.%s.%s%s", hex, t == DNS_OPENPGPKEY ? "_openpgpkey" : "_smimecert", domain,
	    dlen > 0 && domain[dlen - 1] == '.' ? "" : ".");
}

/* The dispatcher: libunbound's answers, as they come, to the lookups waiting for them. */
static void *
dispatch(void *arg)
{
	struct dns_resolver *r = arg;
	struct pollfd p[2] = { { ub_fd(r->ctx), POLLIN, 0 }, { r->wake[0], POLLIN, 0 } };
	sigset_t all;

	/* The program's signals are for its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		if (p[0].revents != 0 && ub_process(r->ctx) != 0)
			break;
	}
	return NULL;
}

/* Called by ub_process() in the dispatcher. */
static void
answered(void *arg, int err, struct ub_result *result)
{
	struct pending *p = arg;

	pthread_mutex_lock(&p->r->lock);
	p->err = err;
	p->result = result;
	p->done = true;
	pthread_cond_broadcast(&p->r->answered);
	pthread_mutex_unlock(&p->r->lock);
}

/*
 * Ask for name/type and wait at most timeout_ms: true with p->result set,
 * or false with the reason in why.  A query still unanswered is cancelled.
 */
static bool
resolve(struct dns_resolver *r, const char *name, int type, unsigned int timeout_ms, struct pending *p,
    char *why, size_t why_len)
{
	struct timespec until;
	int e, id = 0, rc = 0;
	bool running, done;

	pthread_mutex_lock(&r->lock);
	if (!r->started && pthread_create(&r->dispatcher, NULL, dispatch, r) == 0)
		r->started = true;
	running = r->started;
	pthread_mutex_unlock(&r->lock);
	if (!running) {
		snprintf(why, why_len, "no answer: cannot start the DNS dispatcher thread");
		return false;
	}
	if ((e = ub_resolve_async(r->ctx, name, type, LDNS_RR_CLASS_IN, p, answered, &id)) != 0) {
		snprintf(why, why_len, "no answer: %s", ub_strerror(e));
		return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(timeout_ms / 1000);
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (!p->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&r->answered, &r->lock, &until);
	done = p->done;
	pthread_mutex_unlock(&r->lock);
	/* Cancelled: the callback will not come.  Not cancellable: it is being delivered, wait for it. */
	if (!done && ub_cancel(r->ctx, id) == 0) {
		p->timed_out = true;
		snprintf(why, why_len, "no answer within %u ms", timeout_ms);
		return false;
	}
	pthread_mutex_lock(&r->lock);
	while (!p->done)
		pthread_cond_wait(&r->answered, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (p->err != 0 || p->result == NULL) {
		snprintf(why, why_len, "no answer: %s", ub_strerror(p->err));
		return false;
	}
	return true;
}

/* The records of rrset into out: key records as their data, any other kind as its rdata in text. */
static void
copy_records(const ldns_rr_list *rrset, int kind, struct dns_answer *out)
{
	size_t n = ldns_rr_list_rr_count(rrset);

	out->recs = xcalloc(n + 1, sizeof(*out->recs));
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(rrset, i);
		struct dns_record *d = &out->recs[out->n];

		if (kind == DNS_OPENPGPKEY && ldns_rr_rd_count(rr) >= 1) {
			ldns_rdf *f = ldns_rr_rdf(rr, 0);

			d->len = ldns_rdf_size(f);
			d->data = xmalloc(d->len + 1);
			memcpy(d->data, ldns_rdf_data(f), d->len);
			out->n++;
		} else if (kind == DNS_SMIMEA && ldns_rr_rd_count(rr) >= 4 && ldns_rdf_size(ldns_rr_rdf(rr, 0)) == 1) {
			ldns_rdf *f = ldns_rr_rdf(rr, 3);

			d->usage = ldns_rdf_data(ldns_rr_rdf(rr, 0))[0];
			d->selector = ldns_rdf_data(ldns_rr_rdf(rr, 1))[0];
			d->mtype = ldns_rdf_data(ldns_rr_rdf(rr, 2))[0];
			d->len = ldns_rdf_size(f);
			d->data = xmalloc(d->len + 1);
			memcpy(d->data, ldns_rdf_data(f), d->len);
			out->n++;
		} else if (kind == DNS_KIND_TEXT) {
			struct buf text;

			buf_init(&text);
			for (size_t j = 0; j < ldns_rr_rd_count(rr); j++) {
				char *v = ldns_rdf2str(ldns_rr_rdf(rr, j));

				buf_printf(&text, "%s%s", j > 0 ? " " : "", v != NULL ? v : "");
				free(v);
			}
			buf_append(&text, "", 0);
			d->data = (uint8_t *)text.data;
			d->len = text.len;
			out->n++;
		}
		if (i == 0 || ldns_rr_ttl(rr) < out->ttl)
			out->ttl = ldns_rr_ttl(rr);
	}
}

/* The records of type in res (its data: of the type asked, at the end of any CNAME chain), as ldns records. */
static ldns_rr_list *
result_records(const struct ub_result *res, ldns_rr_type type)
{
	ldns_rr_list *list = ldns_rr_list_new();

	for (size_t i = 0; res->data != NULL && res->data[i] != NULL; i++) {
		size_t len = (size_t)res->len[i], pos = 0;
		uint8_t *wire = xmalloc(len + 2);
		ldns_rr *rr = ldns_rr_new();

		wire[0] = (uint8_t)(len >> 8);
		wire[1] = (uint8_t)len;
		memcpy(wire + 2, res->data[i], len);
		ldns_rr_set_type(rr, type);
		ldns_rr_set_ttl(rr, (uint32_t)res->ttl);
		if (len <= 65535 && ldns_wire2rdf(rr, wire, len + 2, &pos) == LDNS_STATUS_OK)
			ldns_rr_list_push_rr(list, rr);
		else
			ldns_rr_free(rr);
		free(wire);
	}
	return list;
}

/* Which denial the answer carries, in words: "NSEC3", "NSEC", or "DNSSEC". */
static const char *
denial_kind(const struct ub_result *res)
{
	ldns_pkt *pkt = NULL;
	ldns_rr_list *l;
	const char *kind = "DNSSEC";

	if (res->answer_packet == NULL ||
	    ldns_wire2pkt(&pkt, res->answer_packet, (size_t)res->answer_len) != LDNS_STATUS_OK)
		return kind;
	if ((l = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_NSEC3, LDNS_SECTION_AUTHORITY)) != NULL)
		kind = "NSEC3";
	else if ((l = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_NSEC, LDNS_SECTION_AUTHORITY)) != NULL)
		kind = "NSEC";
	ldns_rr_list_deep_free(l);
	ldns_pkt_free(pkt);
	return kind;
}

#define NSEC3_ITERATIONS_MAX 2500	/* RFC 5155's largest, and unbound's limit as set above */

/* The largest NSEC3 iteration count in the answer's packet, or 0. */
static unsigned int
nsec3_iterations(const struct ub_result *res)
{
	ldns_pkt *pkt = NULL;
	ldns_rr_list *l;
	unsigned int most = 0;

	if (res->answer_packet == NULL ||
	    ldns_wire2pkt(&pkt, res->answer_packet, (size_t)res->answer_len) != LDNS_STATUS_OK)
		return 0;
	if ((l = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_NSEC3, LDNS_SECTION_ANY_NOQUESTION)) != NULL) {
		for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
			ldns_rdf *it = ldns_rr_rdf(ldns_rr_list_rr(l, i), 2);

			if (it != NULL && ldns_rdf_size(it) == 2 && ldns_rdf2native_int16(it) > most)
				most = ldns_rdf2native_int16(it);
		}
	}
	ldns_rr_list_deep_free(l);
	ldns_pkt_free(pkt);
	return most;
}

/*
 * unbound's verdict as ours: bogus is bogus (why_bogus says why); an error
 * rcode is a temporary failure; data or its absence is secure (-none) when
 * validated, insecure when unbound proved the zone unsigned (or no anchor
 * covers it).
 */
static void
classify(const struct ub_result *res, ldns_rr_type type, int kind, struct dns_answer *out)
{
	ldns_rr_list *rrset;
	unsigned int iterations;

	if (res->bogus) {
		/* why_bogus: "validation failure <NAME TYPE CLASS>: WHY"; the caller knows the name. */
		const char *why = res->why_bogus != NULL ? res->why_bogus : "bogus answer", *cut;

		if (strncmp(why, "validation failure <", 20) == 0 && (cut = strstr(why, ">: ")) != NULL)
			why = cut + 3;
		out->status = DNS_BOGUS;
		snprintf(out->reason, sizeof(out->reason), "DNSSEC validation failed: %s", why);
		return;
	}
	if (res->rcode != LDNS_RCODE_NOERROR && res->rcode != LDNS_RCODE_NXDOMAIN) {
		ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, res->rcode);

		out->status = DNS_TEMPFAIL;
		out->servfail = res->rcode == LDNS_RCODE_SERVFAIL;
		snprintf(out->reason, sizeof(out->reason), "no answer: the resolver answered %s",
		    rc != NULL ? rc->name : "an error");
		return;
	}
	if (!res->secure && (iterations = nsec3_iterations(res)) > NSEC3_ITERATIONS_MAX) {
		/* unbound calls such a denial insecure without checking it: anyone could replay one. */
		out->status = DNS_TEMPFAIL;
		snprintf(out->reason, sizeof(out->reason), "an NSEC3 denial with %u iterations (more than RFC 5155 "
		    "allows) cannot be checked: not taken as unsigned", iterations);
		return;
	}
	out->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	if (!res->havedata) {
		out->status = res->secure ? DNS_SECURE_NONE : DNS_INSECURE;
		if (res->secure)
			snprintf(out->reason, sizeof(out->reason), "no such record (proven by %s)", denial_kind(res));
		else
			snprintf(out->reason, sizeof(out->reason), "no such record (unsigned answer)");
		return;
	}
	rrset = result_records(res, type);
	copy_records(rrset, kind, out);
	out->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	ldns_rr_list_deep_free(rrset);
	out->status = res->secure ? DNS_SECURE : DNS_INSECURE;
	if (res->secure)
		snprintf(out->reason, sizeof(out->reason), "%zu record%s, DNSSEC validated", out->n,
		    out->n == 1 ? "" : "s");
	else
		snprintf(out->reason, sizeof(out->reason), "unsigned answer");
}

/* Look up name/type within timeout_ms (0: the resolver's) and class the answer; records copied by kind. */
static void
query(struct dns_resolver *r, const char *name, ldns_rr_type type, int kind, unsigned int timeout_ms,
    struct dns_answer *out)
{
	struct pending p = { r, false, false, 0, NULL };

	if (timeout_ms == 0 || timeout_ms > r->timeout_ms)
		timeout_ms = r->timeout_ms;
	if (!resolve(r, name, (int)type, timeout_ms, &p, out->reason, sizeof(out->reason))) {
		out->status = DNS_TEMPFAIL;
		/* Only silence is evidence against the domain's servers; an error of ours is not. */
		out->unanswered = p.timed_out;
		return;
	}
	classify(p.result, type, kind, out);
	ub_resolve_free(p.result);
}

cables_status
dns_lookup(struct dns_resolver *r, const char *addr, enum dns_key_type t, time_t now, struct dns_answer *out,
    struct cables_err *err)
{
	const char *at = strrchr(addr, '@');
	ldns_rdf *owner;
	char *local, *name;

	(void)now;
	memset(out, 0, sizeof(*out));
	if (at == NULL || at == addr || at[1] == '\0')
		return cables_fail(err, CABLES_ERR_ARG, "'%s' is not an email address", addr);
	local = xstrndup(addr, (size_t)(at - addr));
	name = dns_owner_name(local, at + 1, t);
	free(local);
	owner = name != NULL ? ldns_dname_new_frm_str(name) : NULL;
	if (owner == NULL) {
		free(name);
		return cables_fail(err, CABLES_ERR_ARG, "'%s': the domain is not a DNS name", addr);
	}
	ldns_rdf_deep_free(owner);
	query(r, name, t == DNS_OPENPGPKEY ? LDNS_RR_TYPE_OPENPGPKEY : LDNS_RR_TYPE_SMIMEA, (int)t, 0, out);
	free(name);
	return CABLES_OK;
}

cables_status
dns_lookup_name(struct dns_resolver *r, const char *name, enum dns_rr_kind kind, time_t now, unsigned int timeout_ms,
    struct dns_answer *out, struct cables_err *err)
{
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_SRV, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA };
	ldns_rdf *owner;

	(void)now;
	memset(out, 0, sizeof(*out));
	if ((owner = ldns_dname_new_frm_str(name)) == NULL)
		return cables_fail(err, CABLES_ERR_ARG, "'%s' is not a DNS name", name);
	ldns_rdf_deep_free(owner);
	query(r, name, types[kind], DNS_KIND_TEXT, timeout_ms, out);
	return CABLES_OK;
}

bool
dns_probe(struct dns_resolver *r, const char *zone, unsigned int timeout_ms, char *why, size_t why_len)
{
	struct pending p = { r, false, false, 0, NULL };
	unsigned char nonce[8];
	char hex[17], *name;
	bool ok;

	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		snprintf(why, why_len, "no probe: no random bytes");
		return false;
	}
	hex_encode(nonce, sizeof(nonce), hex);
	hex[16] = '\0';
	/* A zone whose probe name would not fit a domain name (253): the root's instead. */
	if (zone != NULL && strlen(zone) > 253 - sizeof("cables-probe-.") - 16)
		zone = NULL;
	name = xasprintf("cables-probe-%s.%s%s", hex, zone != NULL ? zone : "",
	    zone == NULL || zone[0] == '\0' || zone[strlen(zone) - 1] != '.' ? "." : "");
	if (timeout_ms == 0 || timeout_ms > r->timeout_ms)
		timeout_ms = r->timeout_ms;
	if (!resolve(r, name, LDNS_RR_TYPE_A, timeout_ms, &p, why, why_len)) {
		free(name);
		return false;
	}
	ok = p.result->rcode == LDNS_RCODE_NOERROR || p.result->rcode == LDNS_RCODE_NXDOMAIN;
	if (ok) {
		snprintf(why, why_len, "%s answered %s", name, p.result->rcode == LDNS_RCODE_NOERROR ? "NOERROR" :
		    "NXDOMAIN");
	} else {
		ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, p.result->rcode);

		snprintf(why, why_len, "%s: the resolver answered %s", name, rc != NULL ? rc->name : "an error");
	}
	ub_resolve_free(p.result);
	free(name);
	return ok;
}
