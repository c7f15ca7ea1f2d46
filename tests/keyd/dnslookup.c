/*
 * dnslookup - a test driver for keyd/dns.c: look up one address and print
 * the answer, one "name=value" per line (the keyd protocol's style).
 *
 * usage: dnslookup SERVER ANCHORS openpgpkey|smimea ADDRESS [TIMEOUT_MS]
 *        dnslookup SERVER ANCHORS srv|txt|a|aaaa NAME [TIMEOUT_MS]
 * Key records print as "record=USAGE SELECTOR MTYPE len=N sha256=HEX", other
 * kinds as "record=TEXT" (dns_lookup_name).  With $DNSLOOKUP_SAVE set,
 * record i's data is also written to $DNSLOOKUP_SAVE.i.
 */
#include "autoconfig.h"

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
	if (kind >= 0)
		st = dns_lookup_name(r, argv[4], (enum dns_rr_kind)kind, time(NULL), 0, &a, &err);
	else
		st = dns_lookup(r, argv[4], t, time(NULL), &a, &err);
	if (st != CABLES_OK) {
		fprintf(stderr, "dnslookup: %s\n", err.msg);
		dns_resolver_free(r);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("status=%s\nrecords=%zu\nttl=%u\nreason=%s\nmilliseconds=%ld\n", dns_status_name(a.status), a.n, a.ttl,
	    a.reason, (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
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
