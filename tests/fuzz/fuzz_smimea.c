/*
 * fuzz_smimea - which certificates an SMIMEA record set vouches for
 * (keyd/smimea.c), over record sets from hostile DNS.  The input is a
 * sequence of records, each "usage selector mtype len_hi len_lo" and len
 * bytes of data; the test CA is TrustAnchors.  Whatever is selected must be
 * a certificate that was in the set, and never a CA's.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "smimea.h"

#define NOW 1800000000L

static X509_STORE *anchors;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *fp = fopen(FUZZ_KEYS_DIR "/test-only-ca.pem", "r");
	X509 *ca;

	if (fp == NULL || (ca = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL)
		abort();
	fclose(fp);
	anchors = X509_STORE_new();
	X509_STORE_add_cert(anchors, ca);
	X509_free(ca);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_record recs[16];
	X509 *out[8];
	char why[256];
	size_t n = 0, off = 0, found;

	while (n < 16 && off + 5 <= size) {
		size_t len = (size_t)data[off + 3] << 8 | data[off + 4];

		if (off + 5 + len > size)
			break;
		recs[n].usage = data[off];
		recs[n].selector = data[off + 1];
		recs[n].mtype = data[off + 2];
		recs[n].len = len;
		recs[n].data = malloc(len + 1);
		memcpy(recs[n].data, data + off + 5, len);
		n++;
		off += 5 + len;
	}
	found = smimea_select(recs, n, anchors, NOW, out, 8, why, sizeof(why));
	if (found == 0 && why[0] == '\0')
		abort();
	for (size_t i = 0; i < found; i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(out[i], &der);
		bool carried = false;

		for (size_t j = 0; j < n && !carried; j++)
			carried = recs[j].selector == 0 && recs[j].mtype == 0 && len > 0 && (size_t)len == recs[j].len &&
			    memcmp(der, recs[j].data, recs[j].len) == 0;
		if (!carried || X509_check_ca(out[i]) != 0)
			abort();
		OPENSSL_free(der);
		X509_free(out[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(recs[i].data);
	return 0;
}
