/*
 * dnslookup - a test driver for keyd/dns.c: look up one address and print
 * the answer, one "name=value" per line (the keyd protocol's style).
 *
 * usage: dnslookup SERVER ANCHORS openpgpkey|smimea ADDRESS [TIMEOUT_MS]
 *        dnslookup SERVER ANCHORS srv|txt|a|aaaa NAME [TIMEOUT_MS]
 * Key records print as "record=USAGE SELECTOR MTYPE len=N sha256=HEX", other
 * kinds as "record=TEXT" (dns_lookup_name).  With $DNSLOOKUP_SAVE set,
 * record i's data is also written to $DNSLOOKUP_SAVE.i.  With
 * $DNSLOOKUP_THREADS=N, N threads ask the same at once through the one
 * resolver; "agree=K" says how many got the first one's status.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "dns.h"
#include "util.h"

/* The dns_lookup_name kind named by word, or -1. */
static int
name_kind(const char *word)
{
	static const char *const kinds[] = { "srv", "txt", "a", "aaaa" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(word, kinds[i]) == 0)
			return (int)i;
	return -1;
}

/* One record: key records by their digest, others as text. */
static void
print_record(const struct dns_record *d, bool text)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (text) {
		printf("record=%s\n", (const char *)d->data);
		return;
	}
	EVP_Digest(d->data, d->len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, mdlen, hex);
	hex[2 * mdlen] = '\0';
	printf("record=%u %u %u len=%zu sha256=%s\n", d->usage, d->selector, d->mtype, d->len, hex);
}

/* One lookup; the same for every thread. */
struct ask {
	struct dns_resolver *r;
	const char *what;
	int kind;		/* a dns_rr_kind, or -1 for a key lookup */
	enum dns_key_type t;
	struct dns_answer a;
	cables_status st;
	struct cables_err err;
};

static void *
ask_run(void *arg)
{
	struct ask *q = arg;

	if (q->kind >= 0)
		q->st = dns_lookup_name(q->r, q->what, (enum dns_rr_kind)q->kind, time(NULL), 0, &q->a, &q->err);
	else
		q->st = dns_lookup(q->r, q->what, q->t, time(NULL), &q->a, &q->err);
	return NULL;
}

/* n - 1 more threads asking what q asks, at the same time as q; how many agree with q's status. */
static size_t
ask_parallel(struct ask *q, size_t n)
{
	struct ask *more = xcalloc(n, sizeof(*more));
	pthread_t *th = xcalloc(n, sizeof(*th));
	size_t agree = 1;

	for (size_t i = 1; i < n; i++) {
		more[i] = *q;
		pthread_create(&th[i], NULL, ask_run, &more[i]);
	}
	ask_run(q);
	for (size_t i = 1; i < n; i++) {
		pthread_join(th[i], NULL);
		if (more[i].st == CABLES_OK && q->st == CABLES_OK && more[i].a.status == q->a.status &&
		    more[i].a.n == q->a.n)
			agree++;
		if (more[i].st == CABLES_OK)
			dns_answer_release(&more[i].a);
	}
	free(more);
	free(th);
	return agree;
}

int
main(int argc, char **argv)
{
	struct dns_resolver *r;
	struct dns_answer a;
	struct cables_err err;
	enum dns_key_type t;
	struct timespec t0, t1;
	int kind;
	cables_status st;
	struct ask q;
	size_t threads = getenv("DNSLOOKUP_THREADS") != NULL ? strtoul(getenv("DNSLOOKUP_THREADS"), NULL, 10) : 1, agree;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: dnslookup SERVER ANCHORS openpgpkey|smimea|srv|txt|a|aaaa ADDRESS|NAME [TIMEOUT_MS]\n");
		return 2;
	}
	t = strcmp(argv[3], "smimea") == 0 ? DNS_SMIMEA : DNS_OPENPGPKEY;
	kind = name_kind(argv[3]);
	if (dns_resolver_new(argv[1], argv[2], argc == 6 ? (unsigned int)atoi(argv[5]) : 5000, &r, &err) != CABLES_OK) {
		fprintf(stderr, "dnslookup: %s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	q = (struct ask){ .r = r, .what = argv[4], .kind = kind, .t = t };
	agree = ask_parallel(&q, threads > 0 ? threads : 1);
	st = q.st;
	a = q.a;
	err = q.err;
	if (st != CABLES_OK) {
		fprintf(stderr, "dnslookup: %s\n", err.msg);
		dns_resolver_free(r);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("status=%s\nrecords=%zu\nttl=%u\nreason=%s\nmilliseconds=%ld\n", dns_status_name(a.status), a.n, a.ttl,
	    a.reason, (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	if (threads > 1)
		printf("agree=%zu\n", agree);
	for (size_t i = 0; i < a.n; i++) {
		print_record(&a.recs[i], kind >= 0);
		if (getenv("DNSLOOKUP_SAVE") != NULL) {
			char *path = xasprintf("%s.%zu", getenv("DNSLOOKUP_SAVE"), i);
			FILE *fp = fopen(path, "wb");

			if (fp != NULL) {
				fwrite(a.recs[i].data, 1, a.recs[i].len, fp);
				fclose(fp);
			}
			free(path);
		}
	}
	dns_answer_release(&a);
	dns_resolver_free(r);
	return 0;
}
