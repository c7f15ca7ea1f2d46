/* smime_encrypt - streaming CMS encryption to base64 lines; see smime.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "smime.h"
#include "util.h"

/* RFC 8551 section 3.3 (EnvelopedData) and RFC 8551/5083 (AuthEnvelopedData). */
static const struct smime_field enveloped_fields[SMIME_OUTPUT_FIELDS] = {
	{ "Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m" },
	{ "Content-Transfer-Encoding", "base64" },
	{ "Content-Disposition", "attachment; filename=smime.p7m" },
	{ "Content-Description", "S/MIME Encrypted Message" },
};
static const struct smime_field auth_enveloped_fields[SMIME_OUTPUT_FIELDS] = {
	{ "Content-Type", "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m" },
	{ "Content-Transfer-Encoding", "base64" },
	{ "Content-Disposition", "attachment; filename=smime.p7m" },
	{ "Content-Description", "S/MIME Encrypted Message" },
};

const struct smime_field *
smime_output_fields(enum cipher_choice c)
{
	return c == CIPHER_AES256_GCM ? auth_enveloped_fields : enveloped_fields;
}

/*
 * A sink BIO that base64-encodes what is written to it in 57-byte groups,
 * i.e. 76-column lines ended by CRLF (RFC 2045), and hands the lines to a
 * byte_sink in chunks of at most SINK_CHUNK_MAX bytes.  OpenSSL's own
 * base64 BIO writes 64-column LF lines.
 */
#define B64_GROUP 57
#define B64_LINE 78	/* 76 characters and CRLF */
#define B64_OUT_CAP (SINK_CHUNK_MAX - SINK_CHUNK_MAX % B64_LINE)

struct b64_state {
	struct byte_sink *sink;
	unsigned char group[B64_GROUP];
	size_t ngroup;
	char out[B64_OUT_CAP];
	size_t nout;
	cables_status st;
	struct cables_err err;
};

static BIO_METHOD *b64_method;
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static bool
b64_flush_out(struct b64_state *s)
{
	if (s->st == CABLES_OK && s->nout > 0)
		s->st = s->sink->write(s->sink->arg, s->out, s->nout, &s->err);
	s->nout = 0;
	return s->st == CABLES_OK;
}

static bool
b64_emit_group(struct b64_state *s)
{
	int n;

	if (s->nout + B64_LINE > sizeof(s->out) && !b64_flush_out(s))
		return false;
	n = EVP_EncodeBlock((unsigned char *)s->out + s->nout, s->group, (int)s->ngroup);
	s->nout += (size_t)n;
	s->out[s->nout++] = '\r';
	s->out[s->nout++] = '\n';
	s->ngroup = 0;
	return true;
}

static int
b64_write(BIO *b, const char *in, int inl)
{
	struct b64_state *s = BIO_get_data(b);
	const unsigned char *p = (const unsigned char *)in;
	size_t left = inl > 0 ? (size_t)inl : 0;

	if (s->st != CABLES_OK)
		return -1;
	while (left > 0) {
		size_t take = B64_GROUP - s->ngroup;

		if (take > left)
			take = left;
		memcpy(s->group + s->ngroup, p, take);
		s->ngroup += take;
		p += take;
		left -= take;
		if (s->ngroup == B64_GROUP && !b64_emit_group(s))
			return -1;
	}
	return inl;
}

static long
b64_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	/* A flush from the CMS layer is not the end of the data: lines stay buffered. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
b64_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
b64_method_init(void)
{
	b64_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cables base64 lines");
	if (b64_method != NULL) {
		BIO_meth_set_write(b64_method, b64_write);
		BIO_meth_set_ctrl(b64_method, b64_ctrl);
		BIO_meth_set_create(b64_method, b64_create);
	}
}

/* Encode what is left and hand it to the sink. */
static cables_status
b64_finish(struct b64_state *s, struct cables_err *err)
{
	if (s->st == CABLES_OK && s->ngroup > 0)
		b64_emit_group(s);
	b64_flush_out(s);
	if (s->st != CABLES_OK && err != NULL)
		*err = s->err;
	return s->st;
}

static cables_status
add_recipients(CMS_ContentInfo *cms, STACK_OF(X509) *certs, const struct smime_encrypt_opts *o,
    struct cables_err *err)
{
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);
		bool oaep = o->rsa_padding == RSA_PAD_OAEP &&
		    EVP_PKEY_get_base_id(X509_get0_pubkey(cert)) == EVP_PKEY_RSA;
		CMS_RecipientInfo *ri;

		ri = CMS_add1_recipient_cert(cms, cert,
		    CMS_BINARY | CMS_STREAM | CMS_PARTIAL | (oaep ? CMS_KEY_PARAM : 0));
		if (ri == NULL)
			return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "adding recipient certificate %d", i + 1);
		if (oaep) {
			EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

			if (pctx == NULL ||
			    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
				return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "setting RSA-OAEP for recipient %d", i + 1);
		}
	}
	return CABLES_OK;
}

static cables_status
write_to_bio(void *arg, const void *p, size_t n, struct cables_err *err)
{
	if (BIO_write(arg, p, (int)n) != (int)n)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "encrypting the content");
	return CABLES_OK;
}

cables_status
smime_encrypt(const struct smime_encrypt_opts *o, STACK_OF(X509) *certs, const struct entity_src *src,
    struct byte_sink *out, struct cables_err *err)
{
	const EVP_CIPHER *cipher;
	CMS_ContentInfo *cms = NULL;
	struct b64_state *state;
	BIO *sinkbio = NULL, *in = NULL;
	cables_status st;

	if (sk_X509_num(certs) <= 0)
		return cables_fail(err, CABLES_ERR_ARG, "no recipient certificate");
	pthread_once(&b64_once, b64_method_init);
	if (b64_method == NULL)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "creating the base64 writer");
	state = xcalloc(1, sizeof(*state));
	state->sink = out;
	state->st = CABLES_OK;
	cipher = o->cipher == CIPHER_AES256_GCM ? EVP_aes_256_gcm() : EVP_aes_256_cbc();
	cms = CMS_encrypt(NULL, NULL, cipher, CMS_BINARY | CMS_STREAM | CMS_PARTIAL);
	if (cms == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "starting CMS encryption");
		goto out;
	}
	if ((st = add_recipients(cms, certs, o, err)) != CABLES_OK)
		goto out;
	sinkbio = BIO_new(b64_method);
	if (sinkbio == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "creating the output BIO");
		goto out;
	}
	BIO_set_data(sinkbio, state);
	in = BIO_new_CMS(sinkbio, cms);
	if (in == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "starting the CMS stream");
		goto out;
	}
	st = entity_src_each(src, write_to_bio, in, err);
	if (st == CABLES_OK && BIO_flush(in) <= 0)
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "finishing the CMS structure");
	/* A sink failure surfaces as a BIO failure above; report the sink's reason. */
	if (state->st != CABLES_OK) {
		st = state->st;
		if (err != NULL)
			*err = state->err;
	} else if (st == CABLES_OK) {
		st = b64_finish(state, err);
	}
out:
	/* Pop and free the BIOs BIO_new_CMS pushed in front of the sink. */
	while (in != NULL && in != sinkbio) {
		BIO *next = BIO_pop(in);

		BIO_free(in);
		in = next;
	}
	BIO_free(sinkbio);
	CMS_ContentInfo_free(cms);
	free(state);
	ERR_clear_error();
	return st;
}

/* The DER length of a TLV whose value has n bytes (one-byte tag). */
static size_t
tlv(size_t n)
{
	return 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4) + n;
}

/*
 * The DER length of the RecipientInfo smime_encrypt() writes for cert
 * (add_recipients: OpenSSL's defaults, RFC 5652 and 5753), from what the
 * certificate says: its issuer and serial number (the rid), and its key.
 * RSA, a KeyTransRecipientInfo: version, rid, the algorithm (rsaEncryption,
 * or RSAES-OAEP with SHA-256 and MGF1-SHA-256 parameters) and the
 * encrypted key, as long as the modulus.  EC, a KeyAgreeRecipientInfo:
 * version, the originator's ephemeral key (a point like the recipient's,
 * uncompressed), the key agreement and key wrap algorithms and one
 * recipient's rid and wrapped AES-256 key.  The constants were measured on
 * OpenSSL 3 (bench/padding checks them for RSA-2048 to 4096 and P-256 to
 * P-521 against what smime_encrypt() writes).
 */
#define RI_ALG_RSA 15		/* SEQUENCE { rsaEncryption, NULL } */
#define RI_ALG_OAEP 58		/* SEQUENCE { id-RSAES-OAEP, { sha256, mgf1(sha256) } } */
#define RI_KARI_FRAME 94	/* a KeyAgreeRecipientInfo beyond its rid and the point, most of it algorithms */

static size_t
recipient_info_len(X509 *cert, enum rsa_padding padding)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	size_t rid = tlv((size_t)i2d_X509_NAME(X509_get_issuer_name(cert), NULL) +
	    (size_t)i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), NULL));
	size_t key;

	if (pub == NULL)	/* smime_cert_check() let no such certificate through: count a big RSA key */
		return tlv(3 + rid + RI_ALG_OAEP + tlv(1024));
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA)
		return tlv(3 + rid + (padding == RSA_PAD_OAEP ? RI_ALG_OAEP : RI_ALG_RSA) +
		    tlv((size_t)EVP_PKEY_get_size(pub)));
	key = 2 * (((size_t)EVP_PKEY_get_bits(pub) + 7) / 8) + 1;
	return tlv(rid + key + RI_KARI_FRAME);
}

/*
 * What the rest of the streamed structure adds: ContentInfo, EnvelopedData
 * (or AuthEnvelopedData) and EncryptedContentInfo around the
 * RecipientInfos, in indefinite lengths (CMS_STREAM), the content
 * encryption algorithm with its IV (CBC) or nonce (GCM), and for CBC the
 * block padding at its longest (16 bytes), for GCM the tag.  Measured as
 * the RecipientInfo lengths above.
 */
#define ENVELOPE_CBC 99
#define ENVELOPE_GCM 106
/*
 * The content goes out in OCTET STRING chunks, one per 4 KiB the cipher
 * BIO hands on for each write (entity_src_each writes each piece, spool
 * pieces in 16 KiB reads): the per-byte rate below counts a 4-byte header
 * per 4 KiB, and each piece can end in one more, short chunk.
 */
#define CHUNK_HEADER 4
/*
 * Base64 in 76-column CRLF lines is 26/19 per byte, and with the chunk
 * headers 89769/65536 (bench/padding measured it on a 1 MiB entity).  The
 * wire size of L bytes is 4 * ceil(L / 3) + 2 * ceil(L / 57): at most 5
 * more than the rate says; WIRE_SLACK covers that and the rounding.
 */
#define RATE_NUM 89769
#define RATE_DEN 65536
#define WIRE_SLACK 8

void
smime_pad_cost(const struct smime_encrypt_opts *o, X509 *const *certs, size_t n_certs, size_t pieces,
    struct pad_cost *c)
{
	/* In 64 bits: a 32-bit size_t would wrap at ~48 KB of RecipientInfos and pad too little. */
	uint64_t raw = o->cipher == CIPHER_AES256_GCM ? ENVELOPE_GCM : ENVELOPE_CBC, fixed;

	for (size_t i = 0; i < n_certs; i++)
		raw += recipient_info_len(certs[i], o->rsa_padding);
	raw += (uint64_t)CHUNK_HEADER * pieces;
	c->num = RATE_NUM;
	c->den = RATE_DEN;
	fixed = (raw * RATE_NUM + RATE_DEN - 1) / RATE_DEN + WIRE_SLACK;
	c->fixed = fixed > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)fixed;
}
