/* khpgp - OpenPGP private-key operations through cables-keyholder; see khpgp.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>

#include "khpgp.h"
#include "pgp_packet.h"
#include "util.h"

/*
 * One request for the (sub)key keyid of OpenPGP key primary; the answer
 * (at most max bytes) into out, *len its length.  CABLES_ERR_IO when the
 * keyholder cannot be reached, is unavailable or rate-limits the address.
 */
static cables_status
ask(const struct kh_transport *t, const char *addr, const char *primary, const char *keyid, enum kh_op op,
    int nid, const uint8_t *data, size_t len, uint8_t *out, size_t max, size_t *outlen, struct cables_err *err)
{
	struct kh_request req;
	struct kh_reply rep;
	cables_status st = CABLES_OK;

	*outlen = 0;
	if (t == NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP secret keys unavailable: KeyholderSocket is none");
	memset(&req, 0, sizeof(req));
	req.op = op;
	req.key = KH_KEY_PGP;
	req.md_nid = nid;
	if (!kh_pgp_fingerprint(req.fingerprint, primary, keyid) || strlen(addr) >= sizeof(req.address) ||
	    len == 0 || len > KH_DATA_MAX)
		return cables_fail(err, CABLES_ERR_ARG, "OpenPGP keyholder request out of bounds");
	strlcpy_c(req.address, addr, sizeof(req.address));
	memcpy(req.data, data, len);
	req.len = len;
	if (t->call(t->arg, &req, &rep, err) != CABLES_OK)
		st = CABLES_ERR_IO;
	else if (rep.status == KH_UNAVAILABLE || rep.status == KH_LIMITED)
		st = cables_fail(err, CABLES_ERR_IO, "keyholder: %s for %.100s", kh_status_name(rep.status), addr);
	else if (rep.status != KH_OK)
		st = cables_fail(err, rep.status == KH_REFUSED ? CABLES_ERR_UNUSABLE : CABLES_ERR_CRYPTO,
		    "keyholder: pgp-%s with key %s %s for %.100s", kh_op_name(op), keyid, kh_status_name(rep.status),
		    addr);
	else if (rep.len > max)
		st = cables_fail(err, CABLES_ERR_CRYPTO, "keyholder: pgp-%s answer too long", kh_op_name(op));
	else {
		memcpy(out, rep.data, rep.len);
		*outlen = rep.len;
	}
	OPENSSL_cleanse(&rep, sizeof(rep));
	OPENSSL_cleanse(&req, sizeof(req));
	return st;
}

/* RSA: the keyholder checks PKCS#1 v1.5 and answers algo || key || checksum. */
static cables_status
rsa_session_key(const struct kh_transport *t, const char *addr, const char *primary, const struct pgp_keypkt *k,
    const struct pgp_pkesk *pk, char out[PGP_SESSION_KEY_STR], struct cables_err *err)
{
	uint8_t block[KH_DATA_MAX], m[KH_DATA_MAX];
	size_t mlen;
	cables_status st;

	/* The MPI drops leading zeros; the keyholder wants the modulus's length. */
	if (pk->mpi_len > k->n.len || k->n.len > sizeof(block))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: RSA session-key block longer than the modulus");
	memset(block, 0, sizeof(block));
	memcpy(block + k->n.len - pk->mpi_len, pk->mpi, pk->mpi_len);
	st = ask(t, addr, primary, k->keyid, KH_OP_RSA_DECRYPT, 0, block, k->n.len, m, sizeof(m), &mlen, err);
	if (st == CABLES_OK)
		st = pgp_session_key_decode(m, mlen, false, out, err);
	/*
	 * Bad PKCS#1 padding (the keyholder's "failed") and a bad session key
	 * behind good padding read the same wherever the reason goes (X-Cables
	 * in the delivered copy, the log): no Bleichenbacher bit for a sender
	 * who gets to read them.  The keyholder's own log keeps the detail.
	 */
	if (st == CABLES_ERR_CRYPTO)
		cables_fail(err, st, "the session key does not decrypt with key %s", k->keyid);
	OPENSSL_cleanse(m, sizeof(m));
	return st;
}

/*
 * ECDH: the keyholder does ECDH, the KDF and the key unwrap
 * (KH_OP_PGP_ECDH_UNWRAP) and answers the unwrapped session key, so that a
 * junk session-key packet fails where its cost is counted (its failure
 * bucket, not the user's decryptions: doc/privsep.md, "Rate buckets").
 */
static cables_status
ecdh_session_key(const struct kh_transport *t, const char *addr, const char *primary, const struct pgp_keypkt *k,
    const struct pgp_pkesk *pk, char out[PGP_SESSION_KEY_STR], struct cables_err *err)
{
	uint8_t data[KH_DATA_MAX], m[64];
	size_t plen, mlen;
	bool x = k->curve == PGP_CURVE_25519;
	cables_status st;

	if (x ? pk->mpi_len != 33 || pk->mpi[0] != 0x40 : pk->mpi_len != 65 || pk->mpi[0] != 0x04)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: malformed ephemeral point in the session-key packet");
	if (pk->wrapped_len == 0 || pk->wrapped_len > sizeof(m))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP ECDH: wrapped session key of %zu bytes",
		    pk->wrapped_len);
	/* Curve25519: the 32-byte u coordinate; P-256: the uncompressed point.  The keyholder validates it. */
	plen = x ? 32 : pk->mpi_len;
	memcpy(data, x ? pk->mpi + 1 : pk->mpi, plen);
	memcpy(data + plen, pk->wrapped, pk->wrapped_len);
	st = ask(t, addr, primary, k->keyid, KH_OP_PGP_ECDH_UNWRAP, 0, data, plen + pk->wrapped_len, m, sizeof(m),
	    &mlen, err);
	if (st == CABLES_OK)
		st = pgp_session_key_decode(m, mlen, true, out, err);
	if (st == CABLES_ERR_CRYPTO)	/* as for RSA: one reason, whichever step failed */
		cables_fail(err, st, "the session key does not decrypt with key %s", k->keyid);
	OPENSSL_cleanse(m, sizeof(m));
	return st;
}

cables_status
khpgp_session_key(const struct kh_transport *t, const char *addr, const char *primary, const uint8_t *pub,
    size_t pub_len, const uint8_t *pkesk, size_t pkesk_len, char out[PGP_SESSION_KEY_STR],
    char used[PGP_FPR_LEN + 1], struct cables_err *err)
{
	struct pgp_pkesk pk;
	struct pgp_keypkt k;
	bool rsa_pk, rsa_key;
	cables_status st;

	out[0] = used[0] = '\0';
	if ((st = pgp_packet_pkesk_parse(pkesk, pkesk_len, &pk, err)) != CABLES_OK)
		return st;
	if ((st = pgp_key_find(pub, pub_len, pk.keyid, &k, err)) != CABLES_OK)
		return st == CABLES_ERR_NOTFOUND ? cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: key %s is not a key "
		    "of %s", pk.keyid, primary) : st;
	rsa_pk = pk.algo == PGP_PK_RSA || pk.algo == PGP_PK_RSA_E;
	rsa_key = k.algo == PGP_PK_RSA || k.algo == PGP_PK_RSA_E;
	if (rsa_pk != rsa_key || (!rsa_pk && k.algo != PGP_PK_ECDH))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: the session-key packet's algorithm %u does not "
		    "suit key %s (algorithm %u)", pk.algo, k.keyid, k.algo);
	st = rsa_pk ? rsa_session_key(t, addr, primary, &k, &pk, out, err) :
	    ecdh_session_key(t, addr, primary, &k, &pk, out, err);
	if (st == CABLES_OK)
		hex_encode(k.fpr, 20, used);
	else if (st == CABLES_ERR_CRYPTO && err != NULL) {
		char detail[CABLES_ERR_MAX];

		strlcpy_c(detail, err->msg, sizeof(detail));
		cables_fail(err, st, "OpenPGP decryption failed: %s", detail);
	}
	return st;
}

struct signer {
	const struct kh_transport *t;
	const char *addr, *primary;
};

/* The keyholder finishes the digest from the request (pgp_sign.h) and signs it. */
static cables_status
keyholder_sign(void *arg, const struct pgp_keypkt *k, const uint8_t *req, size_t req_len, uint8_t *sig, size_t max,
    size_t *len, struct cables_err *err)
{
	const struct signer *s = arg;

	bool rsa = k->algo == PGP_PK_RSA || k->algo == PGP_PK_RSA_S;

	return ask(s->t, s->addr, s->primary, k->keyid, KH_OP_SIGN, rsa ? NID_sha256 : 0, req, req_len, sig, max, len,
	    err);
}

cables_status
khpgp_sign(const struct kh_transport *t, const char *addr, const char *primary, const uint8_t *pub, size_t pub_len,
    const char *keyid, time_t now, const struct entity_src *content, struct pgp_signed *out, struct cables_err *err)
{
	struct signer s = { t, addr, primary };
	struct pgp_keypkt k;
	cables_status st;

	memset(out, 0, sizeof(*out));
	if ((st = pgp_key_find(pub, pub_len, keyid, &k, err)) != CABLES_OK)
		return st;
	if ((st = pgp_sign_mime(&k, now, content, keyholder_sign, &s, out, err)) != CABLES_OK)
		pgp_signed_release(out);
	return st;
}
