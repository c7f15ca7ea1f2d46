/* handler_pgp - the body handler for OpenPGP (PGP/MIME and inline PGP), over pgp/; see handler.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include <openssl/crypto.h>

#include "handler.h"
#include "handler_impl.h"
#include "khpgp.h"
#include "mime.h"
#include "pgp.h"
#include "pgp_key.h"

#define MAX_KEYIDS 256

/* An OpenPGP key: its fingerprint (gpg finds the key by it), and for signing its address. */
struct openpgp_key {
	struct handler_key base;	/* first: a struct handler_key * points here */
	char fpr[PGP_FPR_LEN + 2];	/* an epoch subkey's ends in "!" */
	char long_term[PGP_FPR_LEN + 2];	/* fpr an epoch subkey: the recipient's long-term key, or "" */
	char *addr;			/* signing: whose key (the keyholder checks it), or NULL */
};

static const struct openpgp_key *
openpgp_key(const struct handler_key *k)
{
	return (const struct openpgp_key *)k;
}

static void
pgp_key_free(struct handler_key *k)
{
	struct openpgp_key *pk = (struct openpgp_key *)k;

	free(pk->addr);
	free(pk);
}

/* An epoch subkey becomes the recipient's long-term key, found with it. */
static bool
pgp_key_drop_epoch(struct handler_key *k)
{
	struct openpgp_key *pk = (struct openpgp_key *)k;

	if (pk->long_term[0] == '\0')
		return false;
	strlcpy_c(pk->fpr, pk->long_term, sizeof(pk->fpr));
	pk->long_term[0] = '\0';
	k->epoch = false;
	return true;
}

static struct handler_key *
pgp_find_key(const struct milter_env *env, const char *addr, enum key_use use, char **why, cables_status *st,
    struct cables_err *err)
{
	struct openpgp_key *k;
	char fpr[PGP_FPR_LEN + 2];
	bool epoch;

	if (!keys_pgp(env, addr, use, fpr, &epoch, why, st, err))
		return NULL;
	k = xcalloc(1, sizeof(*k));
	k->base.h = &handler_pgp;
	k->base.epoch = epoch;
	k->base.drop_epoch = pgp_key_drop_epoch;
	if (epoch) {
		char *lwhy = NULL;
		cables_status lst;
		bool e2;

		/* Kept for a copy that cannot hold the epoch subkey alone (outbound.c); none is no error here. */
		if (!keys_pgp(env, addr, KEY_ENCRYPT_LONG_TERM, k->long_term, &e2, &lwhy, &lst, NULL))
			k->long_term[0] = '\0';
		free(lwhy);
	}
	strlcpy_c(k->fpr, fpr, sizeof(k->fpr));
	if (use == KEY_SIGN)
		k->addr = xstrdup(addr);
	return &k->base;
}

static bool
pgp_same_key(const struct handler_key *a, const struct handler_key *b)
{
	return strcmp(openpgp_key(a)->fpr, openpgp_key(b)->fpr) == 0;
}

/*
 * Sign entity as the signer (RFC 3156 section 5), its private-key step done
 * by the keyholder: the store's row of the key gives the public key, gpg's
 * listing of it (cached) the signing (sub)key.
 */
static cables_status
sign_entity(const struct milter_env *env, const struct handler_key *key, const struct entity_src *entity,
    struct pgp_signed *sig, struct cables_err *err)
{
	const struct openpgp_key *signer = openpgp_key(key);
	struct key_list keys;
	struct pgp_key_info info;
	const struct key_record *r = NULL;
	cables_status st;

	memset(sig, 0, sizeof(*sig));
	if (signer->addr == NULL)
		return cables_fail(err, CABLES_ERR_INTERNAL, "OpenPGP: a signing key without its address");
	if ((st = keystore_lookup(env->ks, signer->addr, "pgp", &keys, err)) != CABLES_OK)
		return st;
	for (size_t i = 0; i < keys.count && r == NULL; i++)
		if (strcmp(keys.items[i].fingerprint, signer->fpr) == 0 && keys.items[i].secret_data != NULL)
			r = &keys.items[i];
	if (r == NULL)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP: the store no longer holds the secret key %.16s of %s",
		    signer->fpr, signer->addr);
	else if ((st = pgp_inspect(env->cfg->gnupg_home, r->public_data, r->public_len, &info, err)) == CABLES_OK) {
		if (info.sign_keyid[0] == '\0')
			st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %.16s has no valid signing key",
			    signer->fpr);
		else
			st = khpgp_sign(env->keyholder, signer->addr, signer->fpr, r->public_data, r->public_len,
			    info.sign_keyid, env->now, entity, sig, err);
		pgp_key_info_release(&info);
	}
	key_list_release(&keys);
	return st;
}

/*
 * Encrypt (RFC 3156 section 6.1 when signing: the multipart/signed entity
 * encrypted, since gpg here holds no secret key to sign with).
 */
static cables_status
pgp_encrypt_entity(const struct milter_env *env, const struct handler_encrypt *in, struct byte_sink *out,
    struct handler_result *res, struct cables_err *err)
{
	/* Padding holds only if compression does not make the size depend on the content. */
	struct pgp_encrypt_opts opts = { in->hidden, NULL, in->pad };
	const char **fprs = xcalloc(in->nkeys + 1, sizeof(*fprs));
	struct pgp_signed sig;
	struct entity_src signed_src, padded_src;
	struct buf head, pad;
	cables_status st;

	for (size_t i = 0; i < in->nkeys; i++)
		fprs[i] = openpgp_key(in->keys[i])->fpr;
	buf_init(&head);
	buf_init(&pad);
	if (in->signer != NULL) {
		if ((st = sign_entity(env, in->signer, in->entity, &sig, err)) == CABLES_OK) {
			handler_signed_entity(in->entity, sig.content_type, &sig.prologue, &sig.epilogue, &head,
			    &signed_src);
			if ((st = handler_pad(&handler_pgp, env, in, &signed_src, &pad, &padded_src, &res->padded, err)) ==
			    CABLES_OK)
				st = pgp_encrypt(env->cfg->gnupg_home, &opts, fprs, in->nkeys, &padded_src, out,
				    res->content_type, err);
			pgp_signed_release(&sig);
		}
	} else if ((st = handler_pad(&handler_pgp, env, in, in->entity, &pad, &padded_src, &res->padded, err)) ==
	    CABLES_OK) {
		st = pgp_encrypt(env->cfg->gnupg_home, &opts, fprs, in->nkeys, &padded_src, out, res->content_type,
		    err);
	}
	buf_release(&head);
	buf_release(&pad);
	free(fprs);
	res->fields[0].name = "Content-Type";
	res->fields[0].value = res->content_type;
	res->nfields = 1;
	snprintf(res->trace, sizeof(res->trace), "format=pgp");
	snprintf(res->log, sizeof(res->log), "format=pgp");
	return st;
}

/*
 * ASCII armor in 64-column lines, counted with CRLF (4/3 * 66/64), and a
 * partial-length header per chunk of the literal and encrypted data; a
 * fixed part for the RFC 3156 wrapper, the armor lines, the literal data
 * and integrity packets and the cipher's block; each recipient's session
 * key packet counted for a 4096-bit RSA key (the handler sees fingerprints,
 * not sizes), so that the estimate errs high (handler.h).  Compression is
 * off when padding (pgp_encrypt_entity).
 */
static void
pgp_pad_cost(const struct milter_env *env, const struct handler_encrypt *in, size_t pieces, struct pad_cost *c)
{
	(void)env;
	(void)pieces;
	c->num = 90123;
	c->den = 65536;
	c->fixed = 900 + in->nkeys * 760;
}

/* Ciphertext only if the armor holds session-key packets and then encrypted data. */
static cables_status
pgp_check_ciphertext(const struct message *m, const struct milter_env *env, enum mime_crypto crypto,
    const off_t armor[2], char *why, size_t why_len, struct cables_err *err)
{
	cables_status st;

	if (crypto != MIME_PGP_MIME && crypto != MIME_PGP_INLINE)
		return CABLES_ERR_NOTFOUND;
	st = pgp_message_check(m->body, armor[0], armor[1], err);
	if (st != CABLES_OK && st != CABLES_ERR_IO && st != CABLES_ERR_INTERNAL)
		snprintf(why, why_len, "labelled %s but not an encrypted OpenPGP message: %s", mime_crypto_name(crypto),
		    err->msg);
	/* Not an encrypted message is never "not this format". */
	return st == CABLES_ERR_NOTFOUND ? CABLES_ERR_SYNTAX : st;
}

struct handler_msg {
	bool inline_;			/* a text/plain body that is one armored message */
	off_t armor[2];			/* where the armored message is in the body */
	char (*ids)[17];		/* the key IDs its session-key packets name */
	size_t nids;
	bool hidden;			/* one of them is a hidden recipient's */
	char key[PGP_FPR_LEN + 1];	/* the key it is decrypted with */
	char *key_addr;			/* whose key that is (the keyholder checks the store holds it for them) */
	uint8_t *key_pub;		/* its public key, as the store holds it */
	size_t key_pub_len;
	const struct message *m;
	struct pgp_verify v;
	/*
	 * The recipients it is decrypted for (pgp_names said named): the key
	 * IDs of each one's (sub)keys with a secret.  gpg gets only the
	 * session-key packets naming a key of every target, and the key it
	 * used must still be one of every target's (pgp_decrypt_msg checks).
	 */
	struct target_ids { char (*ids)[17]; size_t n; } *targets;
	size_t ntargets;
};

/* Does some recipient have an OpenPGP secret key?  (Else a text/plain body need not be read.) */
static bool
any_secret(const struct message *m, const struct milter_env *env)
{
	bool any = false;

	for (size_t i = 0; i < m->nrcpts && !any; i++) {
		struct key_list keys;

		if (m->rcpts[i].norm == NULL || keystore_lookup(env->ks, m->rcpts[i].norm, "pgp", &keys, NULL) != CABLES_OK)
			continue;
		for (size_t k = 0; k < keys.count && !any; k++)
			any = keys.items[k].secret_data != NULL;
		key_list_release(&keys);
	}
	return any;
}

/* 1: PGP/MIME, 2: text/plain (inline PGP, perhaps), 0: neither. */
static int
claim_kind(const struct message *m)
{
	const char *ct = message_header_value(m, "Content-Type");
	struct mime_type t;
	int kind = 0;

	if (ct == NULL)
		return 2;	/* RFC 2045: text/plain; charset=us-ascii */
	mime_type_parse(ct, &t);
	if (mime_type_is(&t, "multipart", "encrypted") && t.protocol != NULL &&
	    str_ieq(t.protocol, "application/pgp-encrypted"))
		kind = 1;
	else if (mime_type_is(&t, "text", "plain"))
		kind = 2;
	mime_type_release(&t);
	return kind;
}

static enum handler_claim
pgp_may_claim(const struct message *m, const struct milter_env *env)
{
	int kind = claim_kind(m);

	return kind == 1 ? CLAIM_SURE : kind == 2 && any_secret(m, env) ? CLAIM_MAYBE : CLAIM_NO;
}

static cables_status
pgp_open(const struct message *m, const struct milter_env *env, struct handler_msg **hm, struct cables_err *err)
{
	struct handler_msg *h;
	enum mime_crypto crypto;
	off_t armor[2];
	int kind = claim_kind(m);
	cables_status st;

	*hm = NULL;
	if (kind == 0 || (kind == 2 && !any_secret(m, env)))
		return CABLES_ERR_NOTFOUND;
	if ((st = mime_detect_armor(message_header_value(m, "Content-Type"),
	    message_header_value(m, "Content-Transfer-Encoding"), m->body, &crypto, armor, err)) != CABLES_OK)
		return st;
	if (kind == 2 && crypto != MIME_PGP_INLINE)
		return CABLES_ERR_NOTFOUND;
	h = xcalloc(1, sizeof(*h));
	h->inline_ = kind == 2;
	h->m = m;
	memcpy(h->armor, armor, sizeof(armor));
	h->ids = xcalloc(MAX_KEYIDS, sizeof(*h->ids));
	*hm = h;
	if (kind == 1 && crypto != MIME_PGP_MIME)
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "not well-formed PGP/MIME (RFC 3156: two parts, the second one armored message)");
	if ((st = pgp_message_keyids(m->body, armor[0], armor[1], h->ids, MAX_KEYIDS, &h->nids, err)) != CABLES_OK)
		return st == CABLES_ERR_IO ? st : CABLES_ERR_SYNTAX;
	if (h->nids == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "no public-key encrypted session key in the OpenPGP message");
	for (size_t k = 0; k < h->nids; k++)
		h->hidden |= strcmp(h->ids[k], "0000000000000000") == 0;
	return CABLES_OK;
}

/* Record a target recipient's key: the key IDs of its (sub)keys. */
static void
target_add(struct handler_msg *hm, const struct pgp_key_info *info)
{
	struct target_ids *t;

	hm->targets = xreallocarray(hm->targets, hm->ntargets + 1, sizeof(*hm->targets));
	t = &hm->targets[hm->ntargets++];
	t->ids = xcalloc(info->nsubkeys + 1, sizeof(*t->ids));
	t->n = info->nsubkeys;
	for (size_t s = 0; s < info->nsubkeys; s++) {
		strlcpy_c(t->ids[s], info->subkeys[s] + PGP_FPR_LEN - 16, sizeof(t->ids[s]));
		str_lower(t->ids[s]);
	}
}

/*
 * Did gpg open the session key with a key of every target?  A local user
 * who splices a session-key packet naming their own key behind another
 * user's makes gpg decrypt with the other user's secret: never theirs.
 */
static cables_status
check_decryption_key(const struct handler_msg *hm, struct cables_err *err)
{
	const char *used = hm->v.decrypted_by;
	size_t len = strlen(used);

	if (len < 16)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: gpg did not say which key it decrypted with");
	for (size_t t = 0; t < hm->ntargets; t++) {
		bool owns = false;

		for (size_t k = 0; k < hm->targets[t].n && !owns; k++)
			owns = strcmp(hm->targets[t].ids[k], used + len - 16) == 0;
		if (!owns)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: decrypted with key %.16s, which is not "
			    "a key of every recipient of this copy (a spliced session-key packet?)", used + len - 16);
	}
	return hm->ntargets > 0 ? CABLES_OK :
	    cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: no recipient to decrypt for");
}

/*
 * What an epoch row (pgp_epoch.h: the primary key, then the epoch subkey)
 * holds, read from its own bytes: not imported into the GnuPG home, where
 * gpg would merge it into the long-term key.  CABLES_ERR_NOTFOUND when it
 * is not two readable keys.
 */
static cables_status
epoch_row_info(const struct key_record *r, struct pgp_key_info *info)
{
	struct pgp_keypkt primary, sub;
	char id[17];

	memset(info, 0, sizeof(*info));
	if (strlen(r->fingerprint) != PGP_FPR_LEN || pgp_key_find(r->public_data, r->public_len, NULL, &primary,
	    NULL) != CABLES_OK || primary.tag != 6)
		return CABLES_ERR_NOTFOUND;
	strlcpy_c(id, r->fingerprint + PGP_FPR_LEN - 16, sizeof(id));
	if (pgp_key_find(r->public_data, r->public_len, id, &sub, NULL) != CABLES_OK || sub.tag != 14)
		return CABLES_ERR_NOTFOUND;
	info->subkeys = xcalloc(2, sizeof(*info->subkeys));
	hex_encode(primary.fpr, sizeof(primary.fpr), info->subkeys[0]);
	hex_encode(sub.fpr, sizeof(sub.fpr), info->subkeys[1]);
	info->subkeys[0][PGP_FPR_LEN] = info->subkeys[1][PGP_FPR_LEN] = '\0';
	str_lower(info->subkeys[0]);
	str_lower(info->subkeys[1]);
	info->nsubkeys = 2;
	return CABLES_OK;
}

/*
 * Named when one of addr's OpenPGP keys with a secret has a (sub)key whose
 * key ID the message names.  The first such key is the one the session key
 * is opened with (by the keyholder: its secret never comes here).
 */
static cables_status
pgp_names(struct handler_msg *hm, const struct milter_env *env, const char *addr, bool *named, char *why,
    size_t why_len, struct cables_err *err)
{
	struct key_list keys;
	size_t nsecret = 0;
	cables_status st;

	*named = false;
	if ((st = keystore_lookup(env->ks, addr, "pgp", &keys, err)) != CABLES_OK)
		return st;
	/* Then its OpenPGP epoch keys (rows named by the epoch subkey; the keyholder holds their secrets). */
	if ((st = keys_pgp_epochs(env, addr, &keys, err)) != CABLES_OK) {
		key_list_release(&keys);
		return st;
	}
	for (size_t j = 0; j < keys.count && !*named; j++) {
		struct pgp_key_info info;
		struct pgp_keypkt pk;

		if (keys.items[j].secret_data == NULL)
			continue;
		nsecret++;
		if ((strcmp(keys.items[j].source, KEYSTORE_EPOCH_SOURCE) == 0 ? epoch_row_info(&keys.items[j], &info) :
		    pgp_inspect(env->cfg->gnupg_home, keys.items[j].public_data, keys.items[j].public_len, &info, NULL)) !=
		    CABLES_OK)
			continue;
		/* The row's own bytes must hold the key: the keyholder opens the session key with that row alone. */
		for (size_t s = 0; s < info.nsubkeys && !*named; s++)
			for (size_t k = 0; k < hm->nids && !*named; k++)
				*named = strcmp(info.subkeys[s] + PGP_FPR_LEN - 16, hm->ids[k]) == 0 &&
				    pgp_key_find(keys.items[j].public_data, keys.items[j].public_len, hm->ids[k], &pk,
				    NULL) == CABLES_OK;
		if (*named)
			target_add(hm, &info);
		pgp_key_info_release(&info);
		if (*named && hm->key[0] == '\0') {
			strlcpy_c(hm->key, keys.items[j].fingerprint, sizeof(hm->key));
			hm->key_addr = xstrdup(addr);
			hm->key_pub = xmalloc(keys.items[j].public_len);
			memcpy(hm->key_pub, keys.items[j].public_data, keys.items[j].public_len);
			hm->key_pub_len = keys.items[j].public_len;
		}
	}
	key_list_release(&keys);
	if (!*named)
		snprintf(why, why_len, nsecret == 0 ? "no OpenPGP secret key for %s" : hm->hidden ?
		    "the message hides its recipients' key IDs, and names no key of %s" :
		    "%s is not a recipient of the encryption (no key held for it has the key IDs the message names: "
		    "another recipient's, or an epoch key deleted after EpochKeyGrace)", addr);
	return st;
}

/*
 * The From address's keys in the store: put into the home (before gpg
 * verifies; *count says how many there are), or: is fpr one of them?
 */
static bool
sender_keys(const struct milter_env *env, const char *from_field, const char *signing_fpr, char **from_norm,
    size_t *count)
{
	char *from = mime_first_address(from_field);
	struct key_list keys;
	bool known = false;

	*count = 0;
	*from_norm = from != NULL ? addr_normalize(from, &env->cfg->addr) : NULL;
	free(from);
	if (*from_norm == NULL || keystore_lookup(env->ks, *from_norm, "pgp", &keys, NULL) != CABLES_OK)
		return false;
	*count = keys.count;
	for (size_t i = 0; i < keys.count && !known; i++) {
		const struct key_record *k = &keys.items[i];

		if (signing_fpr == NULL) {
			struct pgp_key_info info;

			if (pgp_inspect(env->cfg->gnupg_home, k->public_data, k->public_len, &info, NULL) == CABLES_OK)
				pgp_key_info_release(&info);
		} else {
			known = pgp_key_has(env->cfg->gnupg_home, k->public_data, k->public_len, signing_fpr);
		}
	}
	key_list_release(&keys);
	return known;
}

static cables_status
spool_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

/*
 * The key IDs gpg may decrypt with: those of the first target's keys that
 * are every target's (a copy's recipients normally share one key).  keep
 * has room for the first target's IDs; *n says how many.
 */
static void
keys_of_every_target(const struct handler_msg *hm, char (*keep)[17], size_t *n)
{
	*n = 0;
	if (hm->ntargets == 0)
		return;
	for (size_t k = 0; k < hm->targets[0].n; k++) {
		bool everyone = true;

		for (size_t t = 1; t < hm->ntargets && everyone; t++) {
			everyone = false;
			for (size_t j = 0; j < hm->targets[t].n && !everyone; j++)
				everyone = strcmp(hm->targets[t].ids[j], hm->targets[0].ids[k]) == 0;
		}
		if (everyone)
			strlcpy_c(keep[(*n)++], hm->targets[0].ids[k], sizeof(keep[0]));
	}
}

/* gpg decrypts for a copy only with a key every recipient of it has. */
static bool
pgp_one_copy(const struct handler_msg *hm)
{
	char (*keep)[17];
	size_t n;

	if (hm->ntargets <= 1)
		return true;
	keep = xcalloc(hm->targets[0].n + 1, sizeof(*keep));
	keys_of_every_target(hm, keep, &n);
	free(keep);
	return n > 0;
}

/*
 * The session key, from the first session-key packet naming one of
 * keep[0..nkeep), opened by the keyholder with hm->key; used: the (sub)key.
 * CABLES_ERR_IO when the keyholder cannot be asked (temp-fail).
 */
static cables_status
session_key(const struct handler_msg *hm, const struct milter_env *env, const char (*keep)[17], size_t nkeep,
    char sk[PGP_SESSION_KEY_STR], char used[PGP_FPR_LEN + 1], struct cables_err *err)
{
	uint8_t body[PGP_PKESK_MAX];
	size_t len;
	cables_status st = CABLES_ERR_NOTFOUND;

	if (hm->key_addr == NULL)
		return cables_fail(err, CABLES_ERR_INTERNAL, "OpenPGP: no key chosen to decrypt with");
	for (size_t i = 0; i < nkeep; i++) {
		struct cables_err why;

		/* Most (sub)keys have no packet here (the primary key, a signing subkey): not an error. */
		st = pgp_message_pkesk(hm->m->body, hm->armor[0], hm->armor[1], keep[i], body, &len, &why);
		if (st == CABLES_ERR_NOTFOUND)
			continue;
		if (st != CABLES_OK && err != NULL)
			*err = why;
		if (st == CABLES_OK)
			st = khpgp_session_key(env->keyholder, hm->key_addr, hm->key, hm->key_pub, hm->key_pub_len, body,
			    len, sk, used, err);
		if (st == CABLES_OK || st == CABLES_ERR_IO)
			break;
	}
	if (st == CABLES_ERR_NOTFOUND)
		cables_fail(err, st, "OpenPGP: no session-key packet for the recipient's keys");
	return st;
}

static cables_status
pgp_decrypt_msg(struct handler_msg *hm, const struct milter_env *env, struct spool **plain, struct cables_err *err)
{
	char sk[PGP_SESSION_KEY_STR], used[PGP_FPR_LEN + 1];
	struct byte_sink sink;
	char *from = NULL, (*keep)[17];
	size_t nkeys, nkeep;
	cables_status st;

	sender_keys(env, hm->m->from, NULL, &from, &nkeys);
	free(from);
	/*
	 * gpg inflates compressed packets: a few kilobytes from anyone can
	 * stand for gigabytes.  The plaintext is held to MaxMessageSize like
	 * the message itself (TOOBIG: not decrypted, with the reason).
	 */
	*plain = spool_new(env->cfg->temp_dir, SPOOL_MEMORY_LIMIT, env->cfg->max_message_size);
	sink.write = spool_write;
	sink.arg = *plain;
	keep = xcalloc(hm->ntargets > 0 ? hm->targets[0].n + 1 : 1, sizeof(*keep));
	keys_of_every_target(hm, keep, &nkeep);
	/*
	 * The keyholder opens the session key; gpg decrypts with it and holds
	 * no secret key.  gpg sees only the session-key packets of the copy's
	 * key, and the key used must be every target's all the same.
	 */
	if ((st = session_key(hm, env, (const char (*)[17])keep, nkeep, sk, used, err)) == CABLES_OK &&
	    (st = pgp_decrypt_with(env->cfg->gnupg_home, hm->m->body, hm->armor[0], hm->armor[1],
	    (const char (*)[17])keep, nkeep, sk, &sink, &hm->v, err)) == CABLES_OK) {
		strlcpy_c(hm->v.decrypted_by, used, sizeof(hm->v.decrypted_by));
		st = check_decryption_key(hm, err);
	}
	OPENSSL_cleanse(sk, sizeof(sk));
	free(keep);
	if (st != CABLES_OK) {
		spool_free(*plain);
		*plain = NULL;
	}
	return st;
}

static bool
pgp_plain_is_entity(const struct handler_msg *hm)
{
	return !hm->inline_;
}

static void
pgp_report(const struct handler_msg *hm, struct buf *field, struct buf *log)
{
	buf_printf(field, "decrypted; format=pgp%s; key=%.16s", hm->inline_ ? "; inline" : "", hm->key);
	buf_printf(log, "format=pgp%s key=%.16s", hm->inline_ ? " inline" : "", hm->key);
}

/* What an OpenPGP signature means here: valid when the store holds the signing key for the From address. */
static void
judge(const struct milter_env *env, const struct pgp_verify *v, const char *from_field, struct handler_sig *sig)
{
	char *from = NULL;
	size_t nkeys;
	bool known;

	memset(sig, 0, sizeof(*sig));
	if (v->good) {
		known = sender_keys(env, from_field, v->fpr, &from, &nkeys);
		sig->status = known ? HANDLER_SIG_VALID : HANDLER_SIG_UNTRUSTED;
		if (known) {
			strlcpy_c(sig->signer, from, sizeof(sig->signer));
			strlcpy_c(sig->held_for, from, sizeof(sig->held_for));
		}
		else
			snprintf(sig->reason, sizeof(sig->reason), "signing key %.16s is not in the key store for %s",
			    v->fpr, from != NULL ? from : "the From address");
	} else {
		sig->status = strstr(v->reason, "not in the key store") != NULL ? HANDLER_SIG_UNTRUSTED : HANDLER_SIG_INVALID;
		strlcpy_c(sig->reason, v->reason, sizeof(sig->reason));
	}
	free(from);
}

/* Signed in the same pass as the encryption. */
static bool
pgp_signature(struct handler_msg *hm, const struct milter_env *env, const char *from_field, struct handler_sig *sig)
{
	if (!hm->v.signed_)
		return false;
	judge(env, &hm->v, from_field, sig);
	return true;
}

/* RFC 3156 multipart/signed with an application/pgp-signature part. */
static bool
pgp_is_signed(const char *content_type)
{
	struct mime_type t;
	bool yes;

	if (content_type == NULL)
		return false;
	mime_type_parse(content_type, &t);
	yes = mime_type_is(&t, "multipart", "signed") && t.protocol != NULL &&
	    str_ieq(t.protocol, "application/pgp-signature");
	mime_type_release(&t);
	return yes;
}

static bool
pgp_verify_entity(const struct milter_env *env, const char *content_type, const char *cte, const struct spool *sp,
    off_t from, const char *from_field, struct handler_sig *sig)
{
	struct pgp_verify v;
	struct cables_err err;
	off_t start[2], end[2];
	char *boundary, *norm = NULL;
	size_t nkeys;
	cables_status st;

	if (!pgp_is_signed(content_type))
		return false;
	/* No key to check it with: no gpg run (mail from strangers costs nothing). */
	sender_keys(env, from_field, NULL, &norm, &nkeys);
	if (nkeys == 0) {
		memset(sig, 0, sizeof(*sig));
		sig->status = HANDLER_SIG_UNTRUSTED;
		snprintf(sig->reason, sizeof(sig->reason), "no OpenPGP key in the key store for %s",
		    norm != NULL ? norm : "the From address");
		free(norm);
		return true;
	}
	boundary = mime_type_param(content_type, "boundary");
	st = mime_signed_parts(sp, from, -1, boundary, start, end, &err);
	free(boundary);
	if (st == CABLES_OK) {
		/* The signature part: its header fields, then the armored signature. */
		off_t body = start[1];
		char head[4096];
		size_t got, off = 0;
		struct mime_field f;

		if (spool_pread(sp, start[1], head, sizeof(head) < (size_t)(end[1] - start[1]) ? sizeof(head) :
		    (size_t)(end[1] - start[1]), &got, &err) == CABLES_OK) {
			while (mime_field_next(head, got, &off, &f) == 1)
				;
			body = start[1] + (off_t)off;
		}
		st = pgp_verify_detached(env->cfg->gnupg_home, sp, start[0], end[0], body, end[1], &v, &err);
	}
	free(norm);
	if (st != CABLES_OK) {
		memset(sig, 0, sizeof(*sig));
		sig->status = HANDLER_SIG_INVALID;
		snprintf(sig->reason, sizeof(sig->reason), "%s", err.msg);
		return true;
	}
	judge(env, &v, from_field, sig);
	return true;
}

static void
pgp_close(struct handler_msg *hm)
{
	if (hm == NULL)
		return;
	for (size_t t = 0; t < hm->ntargets; t++)
		free(hm->targets[t].ids);
	free(hm->targets);
	free(hm->ids);
	free(hm->key_addr);
	free(hm->key_pub);
	free(hm);
}

const struct body_handler handler_pgp = {
	"pgp", "OpenPGP key", "no OpenPGP key", FORMAT_PGP,
	pgp_find_key, pgp_same_key, pgp_key_free, NULL, NULL, pgp_pad_cost, pgp_encrypt_entity, NULL,
	pgp_check_ciphertext,
	pgp_may_claim, pgp_open, pgp_names, pgp_decrypt_msg, pgp_plain_is_entity, pgp_report, pgp_signature, pgp_close,
	pgp_is_signed, pgp_verify_entity, pgp_one_copy,
};
