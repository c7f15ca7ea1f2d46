/* handler_smime - the body handler for S/MIME, over smime/; see handler.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "handler.h"
#include "handler_impl.h"
#include "khkey.h"
#include "mime.h"
#include "smime.h"

/* An S/MIME key: a certificate, and for signing its private key (a khkey). */
struct cert_key {
	struct handler_key base;	/* first: a struct handler_key * points here */
	X509 *cert;
	EVP_PKEY *pkey;
	X509 *long_term;	/* cert an epoch key: the recipient's long-term certificate, or NULL */
};

static const struct cert_key *
cert_key(const struct handler_key *k)
{
	return (const struct cert_key *)k;
}

static void
smime_key_free(struct handler_key *k)
{
	struct cert_key *ck = (struct cert_key *)k;

	X509_free(ck->cert);
	X509_free(ck->long_term);
	EVP_PKEY_free(ck->pkey);
	free(ck);
}

/* An epoch key becomes the recipient's long-term certificate, found with it (its keyd confirmation is gone since). */
static bool
smime_key_drop_epoch(struct handler_key *k)
{
	struct cert_key *ck = (struct cert_key *)k;

	if (ck->long_term == NULL)
		return false;
	X509_free(ck->cert);
	ck->cert = ck->long_term;
	ck->long_term = NULL;
	k->epoch = false;
	return true;
}

static struct handler_key *
smime_find_key(const struct milter_env *env, const char *addr, enum key_use use, char **why, cables_status *st,
    struct cables_err *err)
{
	struct cert_key *k;
	struct key_pair *pairs;
	bool epoch;
	X509 *cert = keys_cert(env, addr, use, &epoch, why, st, err);
	size_t n;

	if (cert == NULL)
		return NULL;
	k = xcalloc(1, sizeof(*k));
	k->base.h = &handler_smime;
	k->base.epoch = epoch;
	k->base.drop_epoch = smime_key_drop_epoch;
	if (epoch) {
		char *lwhy = NULL;
		cables_status lst;

		/* Kept for a copy that cannot hold the epoch key alone (outbound.c); none is no error here. */
		k->long_term = keys_cert(env, addr, KEY_ENCRYPT_LONG_TERM, &epoch, &lwhy, &lst, NULL);
		free(lwhy);
	}
	k->cert = cert;
	if (use != KEY_SIGN)
		return &k->base;
	/* Signing needs the private key of this very certificate. */
	if ((*st = keys_private(env, addr, &pairs, &n, err)) != CABLES_OK) {
		smime_key_free(&k->base);
		return NULL;
	}
	for (size_t i = 0; i < n && k->pkey == NULL; i++)
		if (X509_cmp(pairs[i].cert, cert) == 0) {
			k->pkey = pairs[i].key;
			EVP_PKEY_up_ref(k->pkey);
		}
	key_pairs_free(pairs, n);
	if (k->pkey == NULL) {
		*why = xstrdup("no private key");
		smime_key_free(&k->base);
		return NULL;
	}
	return &k->base;
}

/* Does one of the certificate's email addresses normalise to addr? */
static bool
smime_key_names(const struct milter_env *env, const struct handler_key *k, const char *addr)
{
	char **emails;
	size_t n = smime_cert_emails(cert_key(k)->cert, &emails);
	bool match = false;

	for (size_t i = 0; i < n && !match; i++) {
		char *ne = addr_normalize(emails[i], &env->cfg->addr);

		match = ne != NULL && strcmp(ne, addr) == 0;
		free(ne);
	}
	smime_free_emails(emails, n);
	return match;
}

static enum harvest_outcome
smime_harvest(const struct milter_env *env, const struct handler_key *k, const char *from, char *why, size_t why_len)
{
	return keys_harvest(env, cert_key(k)->cert, from, why, why_len);
}

static bool
smime_same_key(const struct handler_key *a, const struct handler_key *b)
{
	return X509_cmp(cert_key(a)->cert, cert_key(b)->cert) == 0;
}

static cables_status
smime_encrypt_entity(const struct milter_env *env, const struct handler_encrypt *in, struct byte_sink *out,
    struct handler_result *res, struct cables_err *err)
{
	struct smime_encrypt_opts opts = { env->cfg->cipher, env->cfg->rsa_padding };
	const struct smime_field *f = smime_output_fields(env->cfg->cipher);
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_signed sig;
	struct entity_src signed_src, padded_src;
	struct buf head, pad;
	cables_status st;

	for (size_t i = 0; i < in->nkeys; i++)
		sk_X509_push(certs, cert_key(in->keys[i])->cert);
	buf_init(&head);
	buf_init(&pad);
	if (in->signer != NULL) {
		if ((st = smime_sign(cert_key(in->signer)->cert, cert_key(in->signer)->pkey, NULL, in->entity, &sig,
		    err)) != CABLES_OK)
			goto out;
		handler_signed_entity(in->entity, sig.content_type, &sig.prologue, &sig.epilogue, &head,
		    &signed_src);
		if ((st = handler_pad(&handler_smime, env, in, &signed_src, &pad, &padded_src, &res->padded, err)) ==
		    CABLES_OK)
			st = smime_encrypt(&opts, certs, &padded_src, out, err);
		smime_signed_release(&sig);
	} else if ((st = handler_pad(&handler_smime, env, in, in->entity, &pad, &padded_src, &res->padded, err)) ==
	    CABLES_OK) {
		st = smime_encrypt(&opts, certs, &padded_src, out, err);
	}
	for (size_t i = 0; i < SMIME_OUTPUT_FIELDS; i++) {
		res->fields[i].name = f[i].name;
		res->fields[i].value = f[i].value;
	}
	res->nfields = SMIME_OUTPUT_FIELDS;
	snprintf(res->trace, sizeof(res->trace), "format=smime; cipher=%s", cipher_name(env->cfg->cipher));
	snprintf(res->log, sizeof(res->log), "format=smime cipher=%s", cipher_name(env->cfg->cipher));
out:
	buf_release(&head);
	buf_release(&pad);
	sk_X509_free(certs);
	return st;
}

/* The recipients' certificates in a stack of the handler's keys: smime_pad_cost() knows the rest. */
static void
smime_handler_pad_cost(const struct milter_env *env, const struct handler_encrypt *in, size_t pieces,
    struct pad_cost *c)
{
	struct smime_encrypt_opts opts = { env->cfg->cipher, env->cfg->rsa_padding };
	X509 **certs = xcalloc(in->nkeys + 1, sizeof(*certs));

	for (size_t i = 0; i < in->nkeys; i++)
		certs[i] = cert_key(in->keys[i])->cert;
	smime_pad_cost(&opts, certs, in->nkeys, pieces, c);
	free(certs);
}

static cables_status
smime_sign_entity(const struct milter_env *env, const struct handler_key *signer, const struct entity_src *entity,
    struct handler_signed *out, struct cables_err *err)
{
	struct smime_signed sig;
	cables_status st;

	if ((st = smime_sign(cert_key(signer)->cert, cert_key(signer)->pkey, NULL, entity, &sig, err)) != CABLES_OK)
		return st;
	out->format = handler_smime.name;
	strlcpy_c(out->content_type, sig.content_type, sizeof(out->content_type));
	out->prologue = sig.prologue;
	out->epilogue = sig.epilogue;
	return CABLES_OK;
}

/* Ciphertext only if the whole body is one well-formed envelope. */
static cables_status
smime_check_ciphertext(const struct message *m, const struct milter_env *env, enum mime_crypto crypto,
    const off_t armor[2], char *why, size_t why_len, struct cables_err *err)
{
	struct smime_envelope *e = NULL;
	cables_status st;

	if (crypto != MIME_SMIME_ENVELOPED && crypto != MIME_SMIME_AUTHENVELOPED)
		return CABLES_ERR_NOTFOUND;
	st = smime_envelope_open(m->body, 0, mime_cte_is_base64(message_header_value(m, "Content-Transfer-Encoding")),
	    env->cfg->temp_dir, &e, err);
	if (st == CABLES_OK)
		st = smime_envelope_check(e, err);
	smime_envelope_free(e);
	if (st != CABLES_OK && st != CABLES_ERR_IO && st != CABLES_ERR_INTERNAL)
		snprintf(why, why_len, "labelled S/MIME but not well-formed: %s", err->msg);
	/* Not well-formed is never "not this format". */
	return st == CABLES_ERR_NOTFOUND ? CABLES_ERR_SYNTAX : st;
}

struct handler_msg {
	struct smime_envelope *e;
	struct key_pair chosen;
};

/* application/pkcs7-mime (enveloped or authEnveloped, or unlabelled), or an smime.p7m sent as octet-stream. */
static bool
claims(const char *content_type)
{
	struct mime_type t;
	bool yes = false;

	if (content_type == NULL)
		return false;
	mime_type_parse(content_type, &t);
	if (mime_type_is(&t, "application", "pkcs7-mime") || mime_type_is(&t, "application", "x-pkcs7-mime"))
		yes = t.smime_type == NULL || str_ieq(t.smime_type, "enveloped-data") ||
		    str_ieq(t.smime_type, "authEnveloped-data") || t.smime_type[0] == '\0';
	else if (mime_type_is(&t, "application", "octet-stream") && t.name != NULL && strlen(t.name) >= 4)
		yes = str_ieq(t.name + strlen(t.name) - 4, ".p7m");
	mime_type_release(&t);
	return yes;
}

static enum handler_claim
smime_may_claim(const struct message *m, const struct milter_env *env)
{
	return claims(message_header_value(m, "Content-Type")) ? CLAIM_SURE : CLAIM_NO;
}

static cables_status
smime_open(const struct message *m, const struct milter_env *env, struct handler_msg **hm, struct cables_err *err)
{
	struct handler_msg *h;
	cables_status st;

	*hm = NULL;
	if (!claims(message_header_value(m, "Content-Type")))
		return CABLES_ERR_NOTFOUND;
	h = xcalloc(1, sizeof(*h));
	st = smime_envelope_open(m->body, 0, mime_cte_is_base64(message_header_value(m, "Content-Transfer-Encoding")),
	    env->cfg->temp_dir, &h->e, err);
	*hm = h;
	return st;
}

static cables_status
smime_names(struct handler_msg *hm, const struct milter_env *env, const char *addr, bool *named, char *why,
    size_t why_len, struct cables_err *err)
{
	struct key_pair *pairs;
	size_t n, j;
	cables_status st;

	*named = false;
	if ((st = keys_private(env, addr, &pairs, &n, err)) != CABLES_OK)
		return st;
	for (j = 0; j < n && !*named; j++)
		*named = smime_envelope_names(hm->e, pairs[j].cert);
	if (*named && hm->chosen.cert == NULL) {
		hm->chosen = pairs[j - 1];
		pairs[j - 1].cert = NULL;
		pairs[j - 1].key = NULL;
	}
	if (!*named) {
		bool gone = false;

		/*
		 * Encrypted to a certificate issued under the name of one of the
		 * user's certificates, which is not here: most likely an epoch
		 * key deleted EpochKeyGrace after its expiry (forward secrecy:
		 * nobody can open this now), or a key the administrator deleted.
		 * The name alone cannot tell which, so the reason says both.
		 */
		for (j = 0; j < n && !gone; j++)
			gone = smime_envelope_names_issuer(hm->e, pairs[j].cert);
		if (gone)
			snprintf(why, why_len, "encrypted to a key of %s that is no longer held (an expired epoch key "
			    "deleted after EpochKeyGrace, or a deleted key)", addr);
		else
			snprintf(why, why_len, n == 0 ? "no private key for %s" : "%s is not a recipient of the encryption",
			    addr);
	}
	key_pairs_free(pairs, n);
	return CABLES_OK;
}

/*
 * A keyholder that cannot be reached (or rate-limits) is an I/O failure: the
 * message waits, it is not "undecryptable"; and a failure the keyholder
 * reported is one even when CMS_decrypt() said success (khkey_settle()).
 */
static cables_status
smime_decrypt_msg(struct handler_msg *hm, const struct milter_env *env, struct spool **plain, struct cables_err *err)
{
	cables_status st;

	khkey_reset();
	st = khkey_settle(smime_envelope_decrypt(hm->e, hm->chosen.cert, hm->chosen.key, plain, err), err);
	if (st != CABLES_OK && *plain != NULL) {
		spool_free(*plain);	/* garbage from a random content key */
		*plain = NULL;
	}
	return st;
}

static bool
smime_plain_is_entity(const struct handler_msg *hm)
{
	return true;
}

static void
smime_report(const struct handler_msg *hm, struct buf *field, struct buf *log)
{
	buf_printf(field, "decrypted; format=smime; key=%.16s", hm->chosen.fingerprint);
	buf_printf(log, "format=smime key=%.16s algorithm=%s", hm->chosen.fingerprint, smime_envelope_algorithm(hm->e));
}

/* S/MIME signs separately (multipart/signed or signed-data inside): the milter checks the inner entity. */
static bool
smime_signature(struct handler_msg *hm, const struct milter_env *env, const char *from_field, struct handler_sig *sig)
{
	return false;
}

static void
smime_close(struct handler_msg *hm)
{
	if (hm == NULL)
		return;
	smime_envelope_free(hm->e);
	X509_free(hm->chosen.cert);
	EVP_PKEY_free(hm->chosen.key);
	free(hm);
}

enum signed_kind { NOT_SIGNED, SIGNED_MULTIPART, SIGNED_OPAQUE };

static enum signed_kind
signed_kind(const char *content_type)
{
	struct mime_type t;
	enum signed_kind k = NOT_SIGNED;

	if (content_type == NULL)
		return NOT_SIGNED;
	mime_type_parse(content_type, &t);
	if ((mime_type_is(&t, "application", "pkcs7-mime") || mime_type_is(&t, "application", "x-pkcs7-mime")) &&
	    t.smime_type != NULL && str_ieq(t.smime_type, "signed-data"))
		k = SIGNED_OPAQUE;
	else if (mime_type_is(&t, "multipart", "signed") && t.protocol != NULL &&
	    (str_ieq(t.protocol, "application/pkcs7-signature") || str_ieq(t.protocol, "application/x-pkcs7-signature")))
		k = SIGNED_MULTIPART;
	mime_type_release(&t);
	return k;
}

static bool
smime_is_signed(const char *content_type)
{
	return signed_kind(content_type) != NOT_SIGNED;
}

/* smime/'s result as the handler's, taking over the signer's certificate. */
static void
sig_of(struct smime_sig *in, struct handler_sig *out)
{
	struct cert_key *k;

	memset(out, 0, sizeof(*out));
	out->status = in->status == SMIME_SIG_VALID ? HANDLER_SIG_VALID : in->status == SMIME_SIG_UNTRUSTED ?
	    HANDLER_SIG_UNTRUSTED : HANDLER_SIG_INVALID;
	strlcpy_c(out->signer, in->signer, sizeof(out->signer));
	strlcpy_c(out->reason, in->reason, sizeof(out->reason));
	if (in->cert != NULL) {
		k = xcalloc(1, sizeof(*k));
		k->base.h = &handler_smime;
		k->cert = in->cert;
		in->cert = NULL;
		out->key = &k->base;
	}
	smime_sig_release(in);
}

/* multipart/signed or opaque signed-data: trusted through TrustAnchors or the key store. */
static bool
smime_verify_entity(const struct milter_env *env, const char *content_type, const char *cte, const struct spool *sp,
    off_t from, const char *from_field, struct handler_sig *sig)
{
	struct keys_known_arg known = { env, from_field, "" };
	struct smime_verify_ctx ctx = { env->anchors, keys_known, &known, env->now, env->cfg->temp_dir };
	enum signed_kind k = signed_kind(content_type);
	struct smime_sig s;
	struct cables_err err;
	cables_status st;
	char *boundary;
	bool by_store;

	if (k == NOT_SIGNED)
		return false;
	memset(&s, 0, sizeof(s));
	if (k == SIGNED_MULTIPART) {
		boundary = mime_type_param(content_type, "boundary");
		st = smime_verify_multipart(&ctx, boundary, sp, from, -1, &s, &err);
		free(boundary);
	} else {
		st = smime_verify_opaque(&ctx, sp, from, mime_cte_is_base64(cte), &s, &err);
	}
	if (st != CABLES_OK) {
		smime_sig_release(&s);
		memset(sig, 0, sizeof(*sig));
		sig->status = HANDLER_SIG_INVALID;
		snprintf(sig->reason, sizeof(sig->reason), "%s", err.msg);
		return true;
	}
	by_store = s.status == SMIME_SIG_VALID && s.by_store;
	sig_of(&s, sig);
	if (by_store)
		strlcpy_c(sig->held_for, known.held_for, sizeof(sig->held_for));
	return true;
}

const struct body_handler handler_smime = {
	"smime", "S/MIME certificate", "no certificate", FORMAT_SMIME,
	smime_find_key, smime_same_key, smime_key_free, smime_key_names, smime_harvest, smime_handler_pad_cost,
	smime_encrypt_entity,
	smime_sign_entity, smime_check_ciphertext,
	smime_may_claim, smime_open, smime_names, smime_decrypt_msg, smime_plain_is_entity, smime_report, smime_signature,
	smime_close, smime_is_signed, smime_verify_entity, NULL,
};
