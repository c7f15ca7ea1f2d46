/*
 * dnslookup - a test driver for keyd/dns.c: look up one address and print
 * the answer, one "name=value" per line (the keyd protocol's style).
 *
 * usage: dnslookup SERVER ANCHORS openpgpkey|smimea ADDRESS [TIMEOUT_MS]
 * With $DNSLOOKUP_SAVE set, record i's data is also written to $DNSLOOKUP_SAVE.i.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "dns.h"
#include "util.h"

int
main(int argc, char **argv)
{
	struct dns_resolver *r;
	struct dns_answer a;
	struct cables_err err;
	enum dns_key_type t;
	struct timespec t0, t1;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: dnslookup SERVER ANCHORS openpgpkey|smimea ADDRESS [TIMEOUT_MS]\n");
		return 2;
	}
	t = strcmp(argv[3], "smimea") == 0 ? DNS_SMIMEA : DNS_OPENPGPKEY;
	if (dns_resolver_new(argv[1], argv[2], argc == 6 ? (unsigned int)atoi(argv[5]) : 5000, &r, &err) != CABLES_OK) {
		fprintf(stderr, "dnslookup: %s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (dns_lookup(r, argv[4], t, time(NULL), &a, &err) != CABLES_OK) {
		fprintf(stderr, "dnslookup: %s\n", err.msg);
		dns_resolver_free(r);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("status=%s\nrecords=%zu\nttl=%u\nreason=%s\nmilliseconds=%ld\n", dns_status_name(a.status), a.n, a.ttl,
	    a.reason, (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	for (size_t i = 0; i < a.n; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		char hex[2 * EVP_MAX_MD_SIZE + 1];

		EVP_Digest(a.recs[i].data, a.recs[i].len, md, &mdlen, EVP_sha256(), NULL);
		hex_encode(md, mdlen, hex);
		hex[2 * mdlen] = '\0';
		printf("record=%u %u %u len=%zu sha256=%s\n", a.recs[i].usage, a.recs[i].selector, a.recs[i].mtype,
		    a.recs[i].len, hex);
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
