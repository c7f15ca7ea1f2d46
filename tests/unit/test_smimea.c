/* test_smimea - which certificates SMIMEA record sets vouch for (keyd/smimea.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "smimea.h"

#define NOW 1800000000L
#define DAY 86400L

static EVP_PKEY *root_key, *ca_key, *inter_key, *other_key, *ee_key;
static X509 *root, *ca, *inter, *other_ca, *ee, *ee_inter, *ee_self, *ee_expired;

static void
add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key named cn, issued by issuer/ikey (itself when NULL): a CA, or bob's S/MIME certificate. */
static X509 *
issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool is_ca, long from, long to)
{
	static long serial = 1;
	X509 *c = X509_new();
	time_t now = NOW;

	X509_set_version(c, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_time_adj_ex(X509_getm_notBefore(c), 0, from, &now);
	X509_time_adj_ex(X509_getm_notAfter(c), 0, to, &now);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(issuer != NULL ? issuer : c));
	X509_set_pubkey(c, key);
	add_ext(c, issuer != NULL ? issuer : c, NID_subject_key_identifier, "hash");
	if (is_ca) {
		add_ext(c, issuer != NULL ? issuer : c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, issuer != NULL ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(c, issuer != NULL ? issuer : c, NID_basic_constraints, "CA:FALSE");
		add_ext(c, issuer != NULL ? issuer : c, NID_subject_alt_name, "email:bob@b.test");
		add_ext(c, issuer != NULL ? issuer : c, NID_key_usage, "keyEncipherment,digitalSignature,keyAgreement");
		add_ext(c, issuer != NULL ? issuer : c, NID_ext_key_usage, "emailProtection");
	}
	if (issuer != NULL)
		add_ext(c, issuer, NID_authority_key_identifier, "keyid");
	assert_true(X509_sign(c, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return c;
}

static int
setup(void **state)
{
	root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	inter_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ee_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	root = issue("Root", root_key, NULL, NULL, true, -DAY, 365 * DAY);
	ca = issue("B CA", ca_key, NULL, NULL, true, -DAY, 365 * DAY);
	inter = issue("Intermediate", inter_key, root, root_key, true, -DAY, 365 * DAY);
	other_ca = issue("Other CA", other_key, NULL, NULL, true, -DAY, 365 * DAY);
	ee = issue("bob", ee_key, ca, ca_key, false, -DAY, 30 * DAY);
	ee_inter = issue("bob", ee_key, inter, inter_key, false, -DAY, 30 * DAY);
	ee_self = issue("bob", ee_key, NULL, NULL, false, -DAY, 30 * DAY);
	ee_expired = issue("bob", ee_key, ca, ca_key, false, -30 * DAY, -DAY);
	return 0;
}

static int
teardown(void **state)
{
	X509 *all[] = { root, ca, inter, other_ca, ee, ee_inter, ee_self, ee_expired };
	EVP_PKEY *keys[] = { root_key, ca_key, inter_key, other_key, ee_key };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		X509_free(all[i]);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}

/* A record "usage selector mtype" over cert c. */
static struct dns_record
rec(uint8_t usage, uint8_t selector, uint8_t mtype, X509 *c)
{
	struct dns_record r = { NULL, 0, usage, selector, mtype };
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len = selector == 0 ? i2d_X509(c, &der) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der);

	assert_true(len > 0);
	if (mtype == 0) {
		r.data = malloc((size_t)len);
		memcpy(r.data, der, (size_t)len);
		r.len = (size_t)len;
	} else {
		assert_true(EVP_Digest(der, (size_t)len, md, &mdlen, mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL));
		r.data = malloc(mdlen);
		memcpy(r.data, md, mdlen);
		r.len = mdlen;
	}
	OPENSSL_free(der);
	return r;
}

static X509_STORE *
anchors_of(X509 *c)
{
	X509_STORE *s = X509_STORE_new();

	X509_STORE_add_cert(s, c);
	return s;
}

/*
 * Run smimea_select over recs (freed after) with anchors (freed after); the
 * number found; the first one found must be want (when given); why to out.
 */
static size_t
select_(struct dns_record *recs, size_t n, X509_STORE *anchors, X509 *want, char *why, size_t why_len)
{
	X509 *out[8];
	size_t found = smimea_select(recs, n, anchors, NOW, out, 8, why, why_len);

	if (want != NULL && found > 0)
		assert_int_equal(X509_cmp(out[0], want), 0);
	for (size_t i = 0; i < found; i++)
		X509_free(out[i]);
	for (size_t i = 0; i < n; i++)
		free(recs[i].data);
	X509_STORE_free(anchors);
	return found;
}

static void
test_dane_ee(void **state)
{
	char why[256];
	struct dns_record full[] = { rec(3, 0, 0, ee_self) };
	struct dns_record spki[] = { rec(3, 1, 1, ee_self), rec(1, 0, 0, ee_self) };
	struct dns_record sha512[] = { rec(3, 0, 2, ee), rec(1, 0, 0, ee) };
	struct dns_record wrong[] = { rec(3, 1, 1, other_ca), rec(1, 0, 0, ee_self) };

	/* No chain and no TrustAnchors needed: the record is the assertion. */
	assert_int_equal(select_(full, 1, NULL, ee_self, why, sizeof(why)), 1);
	/* The certificate comes in a PKIX-EE record that fails (no anchors); a DANE-EE digest vouches for it. */
	assert_int_equal(select_(spki, 2, NULL, ee_self, why, sizeof(why)), 1);
	assert_int_equal(select_(sha512, 2, NULL, ee, why, sizeof(why)), 1);
	assert_int_equal(select_(wrong, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 1 (PKIX-EE): no TrustAnchors configured"));
}

static void
test_pkix_ee(void **state)
{
	char why[256];
	struct dns_record a[] = { rec(1, 0, 0, ee) }, b[] = { rec(1, 0, 0, ee) }, c[] = { rec(1, 0, 0, ee) };

	assert_int_equal(select_(a, 1, anchors_of(ca), ee, why, sizeof(why)), 1);
	assert_int_equal(select_(b, 1, anchors_of(other_ca), NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 1 (PKIX-EE): not trusted by TrustAnchors: unable to get local issuer"));
	assert_int_equal(select_(c, 1, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "no TrustAnchors configured"));
}

static void
test_dane_ta(void **state)
{
	char why[256];
	struct dns_record a[] = { rec(2, 0, 0, ca), rec(1, 0, 0, ee) };
	struct dns_record hashed[] = { rec(2, 1, 1, ca), rec(2, 0, 0, ca), rec(1, 0, 0, ee) };
	struct dns_record inter_ta[] = { rec(2, 0, 0, inter), rec(1, 0, 0, ee_inter) };
	struct dns_record foreign[] = { rec(2, 0, 0, other_ca), rec(1, 0, 0, ee) };
	struct dns_record absent[] = { rec(2, 0, 1, ca), rec(1, 0, 0, ee) };
	struct dns_record expired[] = { rec(2, 0, 0, ca), rec(1, 0, 0, ee_expired) };

	/* The domain's own CA, not among TrustAnchors: DANE-TA makes it the anchor. */
	assert_int_equal(select_(a, 2, NULL, ee, why, sizeof(why)), 1);
	assert_int_equal(select_(hashed, 3, NULL, ee, why, sizeof(why)), 1);
	/* An intermediate named as the anchor is trusted as it is (no root needed). */
	assert_int_equal(select_(inter_ta, 2, NULL, ee_inter, why, sizeof(why)), 1);
	assert_int_equal(select_(foreign, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 2 (DANE-TA): does not chain to the asserted trust anchor"));
	/* Only a digest of the anchor, and the anchor's certificate is not in the set. */
	assert_int_equal(select_(absent, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 2 (DANE-TA): the asserted trust anchor is not among the records' certificates"));
	assert_int_equal(select_(expired, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "certificate has expired"));
}

static void
test_pkix_ta(void **state)
{
	char why[256];
	struct dns_record a[] = { rec(0, 0, 1, inter), rec(0, 0, 0, inter), rec(1, 0, 0, ee_inter) };
	struct dns_record b[] = { rec(0, 0, 1, other_ca), rec(0, 0, 0, ee_inter) };
	X509_STORE *both = anchors_of(root);

	/* Root in TrustAnchors, the intermediate from the set, and the record names the intermediate. */
	assert_int_equal(select_(a, 3, anchors_of(root), ee_inter, why, sizeof(why)), 1);
	/* Neither the other CA nor bob's own certificate (PKIX-TA names a CA above it) is on the chain. */
	X509_STORE_add_cert(both, inter);
	assert_int_equal(select_(b, 2, both, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 0 (PKIX-TA): the asserted CA is not on the certificate's chain"));
}

static void
test_nothing_to_use(void **state)
{
	char why[256];
	struct dns_record digests[] = { rec(3, 0, 1, ee), rec(3, 1, 2, ee) };
	struct dns_record ca_only[] = { rec(2, 0, 0, ca) };
	struct dns_record odd[] = { rec(3, 0, 0, ee_self), rec(3, 0, 0, ee_self) };
	struct dns_record garbage = { malloc(7), 7, 3, 0, 0 };

	memcpy(garbage.data, "not DER", 7);
	assert_int_equal(select_(digests, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_string_equal(why, "the records carry no certificate (only digests)");
	assert_int_equal(select_(ca_only, 1, NULL, NULL, why, sizeof(why)), 0);
	assert_string_equal(why, "the records carry only CA certificates");
	/* Unknown selector, matching type and usage assert nothing. */
	odd[0].selector = 0;
	odd[0].mtype = 0;
	odd[0].usage = 4;
	odd[1].mtype = 0;
	odd[1].selector = 0;
	odd[1].usage = 255;
	assert_int_equal(select_(odd, 2, NULL, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "usage 4: not supported"));
	assert_int_equal(select_(&garbage, 1, NULL, NULL, why, sizeof(why)), 0);
	assert_string_equal(why, "a record's certificate cannot be decoded");
}

static void
test_every_vouched_certificate(void **state)
{
	char why[256];
	struct dns_record two[] = { rec(3, 0, 0, ee_self), rec(2, 0, 0, ca), rec(1, 0, 0, ee), rec(1, 0, 0, ee_inter) };

	/* ee_self (DANE-EE) and ee (DANE-TA) are vouched for; ee_inter chains to nothing asserted. */
	assert_int_equal(select_(two, 4, NULL, NULL, why, sizeof(why)), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dane_ee),
		cmocka_unit_test(test_pkix_ee),
		cmocka_unit_test(test_dane_ta),
		cmocka_unit_test(test_pkix_ta),
		cmocka_unit_test(test_nothing_to_use),
		cmocka_unit_test(test_every_vouched_certificate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
