/*
 * cables-keyholder - the only Cables process that can unseal private keys.
 *
 * It reads KeyStoreKey, opens sealed private keys from the key store, and
 * performs one private-key operation per request (khop.h) for the milter:
 * unwrap a content key (RSA PKCS#1 v1.5 / OAEP-checked, ECDH, X25519) or
 * sign a digest, for a LOCAL address and a certificate (or OpenPGP key,
 * named by primary fingerprint and key ID) the store holds with a private
 * key for that very address.  OpenPGP secrets are gpg's export, read by
 * pgp_key.c: no gpg runs here.  It never answers with a private key.  It talks
 * to nothing but its UNIX socket (KeyholderSocket), parses no mail, and runs
 * as KeyholderUser; the milter runs as User and holds no private key.  The
 * model is OpenSMTPD's "ca" process; doc/privsep.md says what a compromised
 * milter can still do with it and how that is bounded.
 *
 * It also holds ExchangeKey and signs key-exchange answers and requests
 * (lib/xsign.h) for cables-keyd, which never reads that key.
 *
 * Clients: root, the milter's User, and keyd's KeydUser (SO_PEERCRED at
 * accept); keyd's user gets exchange signatures, epoch keys and vouches
 * only, the milter's user never gets them; held messages' keys
 * (lib/heldseal.h) are for the milter's user only.  A request is
 * exactly KH_REQUEST_SIZE bytes (khproto.h); a peer that sends anything
 * malformed is dropped, never answered best-effort.  Every operation is
 * logged (peer uid, address, operation, fingerprint prefix, outcome) and
 * charged to one of the address's token buckets: signatures, successful
 * decryptions, failed decryptions (khbuckets.c; doc/privsep.md,
 * "Rate buckets").
 * At most KeyholderClients connections at once: when all are taken the one
 * idle the longest, of the peer uid holding the most, makes room (a client
 * that connects and sends nothing cannot lock the milter out, and a peer
 * that floods only closes its own connections), and one idle for
 * KeyholderIdleTimeout is closed.
 * One thread per client connection (the milter keeps up to 16 and shares them),
 * so RSA operations for concurrent messages use every CPU, as they did in
 * the milter; the state they share (rate buckets, the store, the cache of
 * unsealed keys) is behind one lock, the private-key operation itself is
 * not.  No core
 * dumps (RLIMIT_CORE 0, PR_SET_DUMPABLE 0); unsealed keys are freed, and
 * the store key wiped, at exit and on SIGHUP (read again when next needed).
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "config.h"
#include "epochkeys.h"
#include "heldseal.h"
#include "keystore.h"
#include "khbuckets.h"
#include "khop.h"
#include "khwipe.h"
#include "khproto.h"
#include "log.h"
#include "privdrop.h"
#include "pgp_key.h"
#include "pgp_packet.h"
#include "seal.h"
#include "smime.h"
#include "util.h"
#include "xsign.h"

#define CLIENTS_MAX 4096		/* KeyholderClients at most */
#define FRAME_TIMEOUT_MS 10000	/* a request begun must be complete within this */
#define KEYS_MAX 64
#define EPOCH_ROUND_SECS 3600	/* how often epoch keys are looked after */

struct client {
	int fd;
	uid_t uid;
	pid_t pid;
	/* Under state_lock: */
	bool busy;			/* a whole request is being answered */
	bool evicted;			/* no longer in clients[]: closed to make room */
	long long idle_since;		/* monotonic ms: connected, or its last reply */
	uint8_t buf[KH_REQUEST_SIZE];
};

struct cached_key {
	enum kh_key kind;
	unsigned int pgp_algo;			/* OpenPGP: the (sub)key's public-key algorithm */
	unsigned int pgp_use;			/* OpenPGP: its key flags and PGP_USE_REVOKED (pgp_private) */
	char fingerprint[KH_FPR_LEN + 1];	/* the request's field: for OpenPGP, primary and key ID */
	EVP_PKEY *key;
};

/*
 * What the store said of one request's address and key: the record that
 * holds it, kept while the store's data version stays the same (another
 * process's change flushes every entry; the keyholder's own writes, epoch
 * keys made and deleted, flush them as they are reported).  Two store
 * queries per operation were a fifth of the keyholder's time.
 */
struct cached_auth {
	enum kh_key kind;
	char address[KH_ADDR_MAX];
	char fingerprint[KH_FPR_LEN + 1];
	struct key_record rec;
};

/* KH_OP_PGP_ECDH_UNWRAP: the recipient (sub)key's public packet, for the RFC 6637 KDF; the OID copied. */
struct unwrap_params {
	struct pgp_keypkt k;
	uint8_t oid[16];
};

static volatile sig_atomic_t stopping, flushing;
static _Atomic int epoch_busy;		/* a round of epoch key upkeep is running */
static const struct config *cfg;
static struct keystore *ks;
static uint8_t store_key[SEAL_KEY_LEN];
static bool store_key_loaded;
static uid_t milter_uid;
static bool milter_uid_set;
static uid_t keyd_uid;			/* KeydUser's: exchange signatures only */
static bool keyd_uid_set;		/* KeydUser set, and not the milter's User */
static EVP_PKEY *exchange_key;		/* ExchangeKey, read on first use; under state_lock */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;	/* everything below, ks and the store key */
static struct client **clients;	/* KeyholderClients slots; NULL = free */
static size_t nclients;
static struct cached_key keys[KEYS_MAX];
static size_t nkeys;
static struct cached_auth auths[KEYS_MAX];
static size_t nauths, next_auth;	/* next_auth: the slot a new entry takes when all are used */
static long long auths_version;		/* the store's data version the entries are from */

static void
on_stop(int sig)
{
	stopping = 1;
}

static void
on_hup(int sig)
{
	flushing = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: cables-keyholder [-c FILE] [-f] [-n]\n");
	exit(2);
}

static bool
is_decryption(enum kh_op op)
{
	return op == KH_OP_RSA_DECRYPT || op == KH_OP_RSA_DECRYPT_OAEP || op == KH_OP_ECDH || op == KH_OP_PGP_ECDH_UNWRAP;
}

/* The store key, read on first use and again after a failure or SIGHUP; under state_lock. */
static enum kh_status
store_key_ready(struct cables_err *err)
{
	if (!store_key_loaded) {
		if (seal_key_load(cfg->key_store_key, false, store_key, err) != CABLES_OK)
			return KH_UNAVAILABLE;
		store_key_loaded = true;
		log_info("store key %s loaded", cfg->key_store_key);
	}
	return KH_OK;
}

/* The store and its key, opened on first use and again after a failure (the operator may fix them). */
static enum kh_status
store_ready(struct cables_err *err)
{
	if (ks == NULL && keystore_open(&ks, cfg->key_store, false, err) != CABLES_OK)
		return KH_UNAVAILABLE;
	return store_key_ready(err);
}

/* Forget what the store said; under state_lock. */
static void
auths_flush(void)
{
	for (size_t i = 0; i < nauths; i++)
		key_record_release(&auths[i].rec);	/* clears the sealed blob */
	nauths = next_auth = 0;
}

static void
keys_flush(void)
{
	for (size_t i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i].key);	/* OpenSSL clears private components as it frees them */
	nkeys = 0;
}

/* The record kept for req, if the store has not changed since; under state_lock. */
static const struct key_record *
auth_cached(const struct kh_request *req, long long version)
{
	if (version != auths_version) {
		auths_flush();
		auths_version = version;
		return NULL;
	}
	for (size_t i = 0; i < nauths; i++)
		if (auths[i].kind == req->key && strcmp(auths[i].fingerprint, req->fingerprint) == 0 &&
		    strcmp(auths[i].address, req->address) == 0)
			return &auths[i].rec;
	return NULL;
}

/* Keep *r (taken: *r is left empty) as what the store holds for req; the kept copy.  Under state_lock. */
static const struct key_record *
auth_keep(const struct kh_request *req, struct key_record *r)
{
	struct cached_auth *a;

	if (nauths < KEYS_MAX)
		a = &auths[nauths++];
	else {
		a = &auths[next_auth];
		next_auth = (next_auth + 1) % KEYS_MAX;
		key_record_release(&a->rec);
	}
	a->kind = req->key;
	strlcpy_c(a->address, req->address, sizeof(a->address));
	strlcpy_c(a->fingerprint, req->fingerprint, sizeof(a->fingerprint));
	a->rec = *r;
	memset(r, 0, sizeof(*r));
	return &a->rec;
}

/*
 * The (sub)key whose key ID the request names, from an OpenPGP secret key
 * as gpg exports it (pgp_key.h: unprotected RSA, Curve25519, Ed25519,
 * P-256).  These bytes come from the key store, never from mail.
 */
#define PGP_USE_REVOKED 0x100	/* the primary revoked the (sub)key */

static EVP_PKEY *
pgp_private(const uint8_t *sec, size_t len, bool epoch, const struct kh_request *req, unsigned int *algo,
    unsigned int *use, struct cables_err *err)
{
	struct pgp_packet_header h;
	struct pgp_keypkt k;
	char keyid[17];
	unsigned int flags;
	bool revoked;

	memcpy(keyid, req->fingerprint + 40, 16);
	keyid[16] = '\0';
	/*
	 * A long-term row's secret is a whole key, its primary first (as
	 * pgp_holds_key requires): an epoch subkey's seal copied into a row of
	 * another source would escape the grace check and the deletion.
	 */
	if (!epoch && (pgp_packet_header_read(sec, len, &h, NULL) != CABLES_OK || h.tag != 5)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %.16s: its secret is no primary secret key, and "
		    "it is no epoch key", req->fingerprint);
		return NULL;
	}
	if (pgp_key_find(sec, len, keyid, &k, err) != CABLES_OK)
		return NULL;
	if (!k.secret) {
		cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP key %s has no secret part in the store", keyid);
		return NULL;
	}
	if (pgp_key_usage(sec, len, keyid, &flags, &revoked, err) != CABLES_OK)
		return NULL;
	*algo = k.algo;
	*use = flags | (revoked ? PGP_USE_REVOKED : 0);
	return pgp_key_private(&k, err);
}

/*
 * The private key of record r for req, unsealed once and kept by the
 * request's fingerprint: a new reference.  *algo: an OpenPGP key's
 * public-key algorithm (0 for S/MIME).
 */
static EVP_PKEY *
key_of(const struct key_record *r, const struct kh_request *req, unsigned int *algo, unsigned int *use,
    struct cables_err *err)
{
	uint8_t *der;
	size_t len;
	EVP_PKEY *key;

	*algo = *use = 0;
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].kind == req->key && strcmp(keys[i].fingerprint, req->fingerprint) == 0) {
			EVP_PKEY_up_ref(keys[i].key);
			*algo = keys[i].pgp_algo;
			*use = keys[i].pgp_use;
			return keys[i].key;
		}
	if (seal_open(store_key, r->fingerprint, r->secret_data, r->secret_len, &der, &len, err) != CABLES_OK)
		return NULL;
	key = req->key == KH_KEY_PGP ? pgp_private(der, len, strcmp(r->source, KEYSTORE_EPOCH_SOURCE) == 0, req, algo,
	    use, err) : smime_key_from_der(der, len);
	seal_free_secret(der, len);
	if (key == NULL) {
		if (req->key != KH_KEY_PGP)
			cables_fail(err, CABLES_ERR_CRYPTO, "the private key cannot be decoded");
		return NULL;
	}
	if (nkeys == KEYS_MAX)
		keys_flush();
	keys[nkeys].kind = req->key;
	keys[nkeys].pgp_algo = *algo;
	keys[nkeys].pgp_use = *use;
	strlcpy_c(keys[nkeys].fingerprint, req->fingerprint, sizeof(keys[nkeys].fingerprint));
	keys[nkeys++].key = key;
	EVP_PKEY_up_ref(key);
	return key;
}

/*
 * May r's certificate sign as address now: within its validity period, with
 * a key usage that allows digitalSignature or nonRepudiation (when it has
 * one), naming the address, for emailProtection?  The milter checks this
 * when it picks a signing key; the keyholder checks again, because it is
 * the keyholder's key that signs, whoever asks.
 */
static bool
may_sign(const struct key_record *r, const char *address, struct cables_err *err)
{
	X509 *cert = smime_cert_from_der(r->public_data, r->public_len);
	struct cables_err why;
	bool ok;

	if (cert == NULL) {
		cables_fail(err, CABLES_ERR_SYNTAX, "the stored certificate cannot be decoded");
		return false;
	}
	ok = smime_cert_check_signing(cert, address, &cfg->addr, time(NULL), &why) == CABLES_OK;
	X509_free(cert);
	if (!ok)
		cables_fail(err, CABLES_ERR_UNUSABLE, "the certificate may not sign: %s", why.msg);
	return ok;
}

/*
 * May OpenPGP key record r sign now?  Not once its primary key has
 * expired (the store row's not_after, from gpg's listing at import), as
 * the milter itself would not pick it: the keyholder checks again because
 * it is its key that signs, whoever asks.  (Revocations and subkey expiry
 * are not in the row; the milter's choice of subkey covers them.)
 */
static bool
pgp_may_sign(const struct key_record *r, struct cables_err *err)
{
	time_t now = time(NULL);

	if (r->not_after > 0 && r->not_after <= (long long)now) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "the OpenPGP key expired at %lld", r->not_after);
		return false;
	}
	return true;
}

/*
 * Does the OpenPGP (sub)key's algorithm allow op?  ECDH only with an ECDH
 * key, signing only with a signing algorithm, PKCS#1 v1.5 decryption only
 * with RSA; raw OAEP-checked decryption is no OpenPGP operation.  RSA's
 * algorithm 1 serves both: the key flags (use, from pgp_key_usage) tell a
 * signing key from an encryption one.
 */
static bool
pgp_op_suits(enum kh_op op, unsigned int algo, unsigned int use, struct cables_err *err)
{
	unsigned int flags = use & 0xff;

	/*
	 * The key's own flags, when its self-signatures carry them: a key
	 * that certifies and signs (an RSA primary) decrypts nothing, so no
	 * padding oracle reaches the key that makes certifications; an
	 * encryption subkey signs nothing; a revoked (sub)key signs nothing
	 * (it still decrypts: mail sent before the revocation stays readable).
	 */
	if (op == KH_OP_SIGN && (use & PGP_USE_REVOKED)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "the OpenPGP key is revoked");
		return false;
	}
	if (flags != 0 && (op == KH_OP_SIGN ? !(flags & PGP_FLAG_SIGN) : !(flags & PGP_FLAG_ENCRYPT))) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s is not a use of this OpenPGP key (key flags 0x%02x)",
		    kh_op_name(op), flags);
		return false;
	}
	cables_fail(err, CABLES_ERR_UNUSABLE, "%s is not an operation of OpenPGP algorithm %u", kh_op_name(op), algo);
	switch (op) {
	case KH_OP_RSA_DECRYPT: return algo == PGP_PK_RSA || algo == PGP_PK_RSA_E;
	case KH_OP_ECDH:
	case KH_OP_PGP_ECDH_UNWRAP: return algo == PGP_PK_ECDH;
	case KH_OP_SIGN: return algo == PGP_PK_RSA || algo == PGP_PK_RSA_S || algo == PGP_PK_ECDSA || algo == PGP_PK_EDDSA;
	default: return false;
	}
}

/* Does store record r hold the key req names?  S/MIME: the certificate's fingerprint; OpenPGP: the primary's. */
static bool
names_record(const struct kh_request *req, const struct key_record *r)
{
	if (r->secret_data == NULL)
		return false;
	if (req->key == KH_KEY_PGP)
		return strlen(r->fingerprint) == 40 && strncmp(r->fingerprint, req->fingerprint, 40) == 0;
	return strcmp(r->fingerprint, req->fingerprint) == 0;
}

/* The KDF's inputs for req's (sub)key, from r's public key (the store's bytes). */
static enum kh_status
unwrap_params(const struct key_record *r, const struct kh_request *req, struct unwrap_params *up,
    struct cables_err *err)
{
	char keyid[17];

	if (req->key != KH_KEY_PGP) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "ecdh-unwrap is for OpenPGP keys only");
		return KH_REFUSED;
	}
	memcpy(keyid, req->fingerprint + 40, 16);
	keyid[16] = '\0';
	if (pgp_key_find(r->public_data, r->public_len, keyid, &up->k, err) != CABLES_OK)
		return KH_REFUSED;
	if (up->k.oid_len > sizeof(up->oid)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s: a curve OID of %zu bytes", keyid, up->k.oid_len);
		return KH_REFUSED;
	}
	memcpy(up->oid, up->k.oid, up->k.oid_len);
	up->k.oid = up->oid;
	/* Nothing else of the packet is used: its MPIs point into bytes freed with the lookup. */
	memset(&up->k.n, 0, sizeof(up->k.n));
	memset(&up->k.e, 0, sizeof(up->k.e));
	memset(&up->k.point, 0, sizeof(up->k.point));
	return KH_OK;
}

/*
 * Is req's address local, within its rate, and does the store hold req's
 * certificate (or OpenPGP key) with a private key for it?  *key: a new
 * reference.  Under state_lock.
 */
static enum kh_status
authorise(const struct kh_request *req, EVP_PKEY **key, struct unwrap_params *up, struct cables_err *err)
{
	char *norm = addr_valid(req->address) ? addr_normalize(req->address, &cfg->addr) : NULL;
	struct key_list list, epochs;
	const struct key_record *r = NULL;
	enum kh_status st;
	enum bucket_class class = is_decryption(req->op) ? BUCKET_DECRYPT : BUCKET_SIGN;
	unsigned int algo, use;
	long long version;

	*key = NULL;
	if (norm == NULL || strcmp(norm, req->address) != 0 ||
	    !domain_list_match(&cfg->local_domains, addr_domain(norm))) {
		free(norm);
		cables_fail(err, CABLES_ERR_UNUSABLE, "not a local address");
		return KH_REFUSED;
	}
	free(norm);
	if ((st = store_ready(err)) != KH_OK)
		return st;
	if (keystore_data_version(ks, &version, err) != CABLES_OK)
		return KH_UNAVAILABLE;
	if ((r = auth_cached(req, version)) == NULL) {
		if (keystore_lookup(ks, req->address, req->key == KH_KEY_PGP ? "pgp" : "smime", &list, err) != CABLES_OK)
			return KH_UNAVAILABLE;
		/* The address's epoch keys too (they decrypt; an epoch certificate's key usage allows no signing). */
		if (keystore_epoch_list(ks, req->address, true, &epochs, err) != CABLES_OK) {
			key_list_release(&list);
			return KH_UNAVAILABLE;
		}
		key_list_take(&list, &epochs);
		for (size_t i = 0; i < list.count && r == NULL; i++)
			if (names_record(req, &list.items[i]) && strcmp(list.items[i].format,
			    req->key == KH_KEY_PGP ? "pgp" : "smime") == 0)
				r = auth_keep(req, &list.items[i]);
		key_list_release(&list);
	}
	/* Only an address with this very key spends (or gets) a bucket: made-up ones cannot crowd the table. */
	if (r != NULL && req->op == KH_OP_PGP_ECDH_UNWRAP && unwrap_params(r, req, up, err) != KH_OK)
		st = KH_REFUSED;
	else if (r == NULL)
		st = KH_REFUSED, cables_fail(err, CABLES_ERR_NOTFOUND, "no private key of this %s for the address",
		    req->key == KH_KEY_PGP ? "OpenPGP key" : "certificate");
	/* Past its grace an epoch key is used no more, deleted or not yet (the next round deletes it). */
	else if (strcmp(r->source, KEYSTORE_EPOCH_SOURCE) == 0 && (long long)time(NULL) >= epoch_delete_at(r->not_after,
	    &(struct epoch_times){ (long long)(cfg->epoch_key_lifetime_ms / 1000),
	    (long long)(cfg->epoch_key_grace_ms / 1000) }))
		st = KH_REFUSED, cables_fail(err, CABLES_ERR_NOTFOUND, "epoch key %.16s is past its grace: no longer held",
		    r->fingerprint);
	else if (req->op == KH_OP_SIGN && req->key != KH_KEY_PGP && !may_sign(r, req->address, err))
		st = KH_REFUSED;
	else if (req->op == KH_OP_SIGN && req->key == KH_KEY_PGP && !pgp_may_sign(r, err))
		st = KH_REFUSED;
	else if (!bucket_take(req->address, class))
		st = bucket_limited(class, err);
	else {
		if ((*key = key_of(r, req, &algo, &use, err)) == NULL)
			st = KH_FAILED;
		else if (req->key == KH_KEY_PGP && !pgp_op_suits(req->op, algo, use, err)) {
			st = KH_REFUSED;
			EVP_PKEY_free(*key);
			*key = NULL;
		}
		/* A decryption keeps its token only when performed and successful (serve() settles that). */
		if (st != KH_OK && class == BUCKET_DECRYPT)
			bucket_give(req->address, BUCKET_DECRYPT);
	}
	return st;
}

/* ExchangeKey, read on first use and after SIGHUP; under state_lock. */
static enum kh_status
exchange_key_ready(struct cables_err *err)
{
	FILE *fp;

	if (exchange_key != NULL)
		return KH_OK;
	if (cfg->exchange_key == NULL) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "ExchangeKey is not set");
		return KH_UNAVAILABLE;
	}
	if ((fp = fopen(cfg->exchange_key, "re")) == NULL) {
		cables_fail(err, CABLES_ERR_IO, "ExchangeKey %s: %s", cfg->exchange_key, strerror(errno));
		return KH_UNAVAILABLE;
	}
	exchange_key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (exchange_key == NULL || EVP_PKEY_get_base_id(exchange_key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(exchange_key);
		exchange_key = NULL;
		cables_fail(err, CABLES_ERR_SYNTAX, "ExchangeKey %s: not an Ed25519 private key in PEM", cfg->exchange_key);
		return KH_UNAVAILABLE;
	}
	return KH_OK;
}

/* Is req a well-formed exchange-sign request for a local domain? */
static bool
exchange_request_ok(const struct kh_request *req, struct cables_err *err)
{
	for (size_t i = 0; i < KH_FPR_LEN; i++)
		if (req->fingerprint[i] != '0') {
			cables_fail(err, CABLES_ERR_ARG, "the fingerprint must be zeros");
			return false;
		}
	if (req->md_nid != NID_sha512 || req->len != 1 + X_DIGEST_LEN || x_sign_context(req->data[0]) == NULL) {
		cables_fail(err, CABLES_ERR_ARG, "not a kind and a SHA-512 digest");
		return false;
	}
	if (req->address[0] != '@' || !domain_list_match(&cfg->local_domains, req->address + 1)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "not @ and a local domain");
		return false;
	}
	return true;
}

/*
 * Sign an exchange answer or request (lib/xsign.h) as a local domain with
 * ExchangeKey: for keyd's KeydUser and root only, never for the milter's
 * User.  The reply: the signature and the key's raw public half.
 */
static enum kh_status
exchange_sign(const struct client *c, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	uint8_t msg[X_SIGN_MSG_MAX];
	size_t mlen, siglen = X_SIG_LEN, publen = X_PUB_LEN;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	enum kh_status st;
	bool ok, fresh;

	if (c->uid != 0 && !(keyd_uid_set && c->uid == keyd_uid)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "exchange signatures are for keyd's KeydUser only%s",
		    keyd_uid_set ? "" : " (KeydUser is not set, or is the milter's User)");
		return KH_REFUSED;
	}
	if (!exchange_request_ok(req, err))
		return KH_REFUSED;
	pthread_mutex_lock(&state_lock);
	fresh = exchange_key == NULL;
	if ((st = exchange_key_ready(err)) == KH_OK && fresh)
		log_info("exchange key %s loaded", cfg->exchange_key);
	if (st == KH_OK && !bucket_take(req->address, BUCKET_SIGN))
		st = bucket_limited(BUCKET_SIGN, err);
	if (st == KH_OK && EVP_PKEY_up_ref(exchange_key) == 1)
		key = exchange_key;
	pthread_mutex_unlock(&state_lock);
	if (st != KH_OK)
		return st;
	mlen = x_sign_message(req->data[0], req->data + 1, msg);
	ok = key != NULL && (ctx = EVP_MD_CTX_new()) != NULL;
	ok = ok && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, rep->data, &siglen, msg, mlen) == 1 && siglen == X_SIG_LEN &&
	    EVP_PKEY_get_raw_public_key(key, rep->data + X_SIG_LEN, &publen) == 1 && publen == X_PUB_LEN;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (!ok) {
		cables_fail(err, CABLES_ERR_CRYPTO, "Ed25519 signing failed");
		return KH_FAILED;
	}
	rep->len = X_SIG_LEN + X_PUB_LEN;
	return KH_OK;
}

static void epoch_report(void *arg, enum epochkeys_event ev, const char *address, const char *fpr, long long when,
    const char *why);

/*
 * KH_OP_EPOCH_CURRENT, for keyd's KeydUser and root only: the digest of
 * the address's current epoch certificate as checked here
 * (epochkeys_current), so that keyd serves no epoch row the milter wrote.
 * An empty answer: there is none.
 */
/*
 * May c ask what keyd asks (KH_OP_EPOCH_CURRENT, KH_OP_VOUCH) of req's
 * address: c is keyd's KeydUser or root, the address a normalised local
 * one, the data one 0 byte and the fingerprint all zeros?
 */
static enum kh_status
keyd_asks(const struct client *c, const struct kh_request *req, const char *what, struct cables_err *err)
{
	char *norm = addr_valid(req->address) ? addr_normalize(req->address, &cfg->addr) : NULL;
	bool ok = norm != NULL && strcmp(norm, req->address) == 0 && domain_list_match(&cfg->local_domains,
	    addr_domain(norm)) && req->len == 1 && req->data[0] == 0 && strspn(req->fingerprint, "0") == KH_FPR_LEN;

	free(norm);
	if (c->uid != 0 && !(keyd_uid_set && c->uid == keyd_uid)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s are asked for by keyd's KeydUser only%s", what,
		    keyd_uid_set ? "" : " (KeydUser is not set, or is the milter's User)");
		return KH_REFUSED;
	}
	if (!ok) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "not a local address, or not a 0 byte and a zero fingerprint");
		return KH_REFUSED;
	}
	return KH_OK;
}

static enum kh_status
epoch_current(const struct client *c, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	struct epochkeys_env e;
	enum kh_status st;
	bool found = false;

	if ((st = keyd_asks(c, req, "epoch keys", err)) != KH_OK)
		return st;
	memset(&e, 0, sizeof(e));
	e.local_domains = &cfg->local_domains;
	e.report = epoch_report;
	pthread_mutex_lock(&state_lock);
	if ((st = store_ready(err)) == KH_OK) {
		e.ks = ks;
		e.store_key = store_key;
		if (epochkeys_current_format(&e, req->address, req->key == KH_KEY_PGP ? "pgp" : "smime", (long long)time(NULL),
		    rep->data, &found, err) != CABLES_OK)
			st = KH_UNAVAILABLE;
	}
	pthread_mutex_unlock(&state_lock);
	rep->len = st == KH_OK && found ? 32 : 0;
	return st;
}

/*
 * Does OpenPGP row r hold its own key: its public data's primary key has
 * the row's fingerprint, and its seal opens with the store key under that
 * fingerprint on a secret key of the same primary?  Under state_lock.
 */
static bool
pgp_holds_key(const struct key_record *r, char *why, size_t whylen)
{
	struct pgp_keypkt pub, sec;
	char hex[41];
	uint8_t *secret = NULL;
	size_t secret_len = 0;
	struct cables_err err;
	bool ok = false;

	if (strlen(r->fingerprint) != 40 || pgp_key_find(r->public_data, r->public_len, r->fingerprint + 24, &pub,
	    &err) != CABLES_OK || pub.tag != 6) {
		snprintf(why, whylen, "its public data has no primary key %.16s", r->fingerprint);
		return false;
	}
	for (size_t i = 0; i < sizeof(pub.fpr); i++)
		snprintf(hex + 2 * i, 3, "%02x", pub.fpr[i]);
	if (strcmp(hex, r->fingerprint) != 0) {
		snprintf(why, whylen, "its fingerprint is not its primary key's");
		return false;
	}
	if (seal_open(store_key, r->fingerprint, r->secret_data, r->secret_len, &secret, &secret_len, &err) !=
	    CABLES_OK) {
		snprintf(why, whylen, "its seal does not open with the store key");
		return false;
	}
	if (pgp_key_find(secret, secret_len, r->fingerprint + 24, &sec, &err) != CABLES_OK || sec.tag != 5 ||
	    memcmp(sec.fpr, pub.fpr, sizeof(pub.fpr)) != 0)
		snprintf(why, whylen, "its secret key is not its primary key's");
	else
		ok = true;
	seal_free_secret(secret, secret_len);
	return ok;
}

/*
 * Is S/MIME row r shaped as an epoch certificate (key agreement alone)?
 * Such a key is no long-term key whatever its row says: a compromised
 * milter could copy an epoch row under a long-term source, and it would
 * outlive the epoch key's deletion.
 */
static bool
epoch_shaped(const struct key_record *r)
{
	X509 *cert = smime_cert_from_der(r->public_data, r->public_len);
	bool shaped = cert == NULL || ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) &&
	    X509_get_key_usage(cert) == KU_KEY_AGREEMENT);

	X509_free(cert);
	return shaped;
}

/*
 * What a KH_OP_VOUCH answer says of one address, kept while the store's
 * data version stays the same (auths_version): checking a seal and a key
 * costs more than the decryption it protects, and an exchange answer asks
 * for every address it names.  Under state_lock.
 */
struct vouched {
	char address[KH_ADDR_MAX];
	uint8_t digests[KH_VOUCH_MAX][32];
	size_t n;
};

static struct vouched vouches[KEYS_MAX];
static size_t nvouches, next_vouch;
static long long vouches_version;

/*
 * KH_OP_VOUCH, for keyd's KeydUser and root only: the digests of the
 * address's long-term keys this keyholder holds (doc/privsep.md), so that
 * keyd serves peers no key the milter planted in the store it can write:
 * a row whose seal does not open, or opens on another key, is logged and
 * left out.  Rows discovered elsewhere, or without a private key, are not
 * the address's own.
 */
static enum kh_status
vouch(const struct client *c, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	struct epochkeys_env e;
	struct key_list list;
	struct vouched *v = NULL;
	char why[CABLES_ERR_MAX];
	long long version;
	enum kh_status st;

	if ((st = keyd_asks(c, req, "vouches", err)) != KH_OK)
		return st;
	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&state_lock);
	if ((st = store_ready(err)) != KH_OK)
		goto out;
	if (keystore_data_version(ks, &version, err) != CABLES_OK) {
		st = KH_UNAVAILABLE;
		goto out;
	}
	if (version != vouches_version)
		nvouches = next_vouch = 0, vouches_version = version;
	for (size_t i = 0; i < nvouches && v == NULL; i++)
		if (strcmp(vouches[i].address, req->address) == 0)
			v = &vouches[i];
	if (v == NULL) {
		if (keystore_lookup(ks, req->address, NULL, &list, err) != CABLES_OK) {
			st = KH_UNAVAILABLE;
			goto out;
		}
		if (nvouches < KEYS_MAX)
			v = &vouches[nvouches++];
		else {
			v = &vouches[next_vouch];
			next_vouch = (next_vouch + 1) % KEYS_MAX;
		}
		memset(v, 0, sizeof(*v));
		strlcpy_c(v->address, req->address, sizeof(v->address));
		e.store_key = store_key;
		for (size_t i = 0; i < list.count && v->n < KH_VOUCH_MAX; i++) {
			const struct key_record *r = &list.items[i];
			bool held;

			if (key_source_discovered(r->source) || r->secret_data == NULL)
				continue;
			if (strcmp(r->format, "pgp") != 0 && epoch_shaped(r)) {
				log_warnx("%s: key %.16s not vouched for: an epoch certificate (key agreement only) in a "
				    "long-term row", r->address, r->fingerprint);
				continue;
			}
			held = strcmp(r->format, "pgp") == 0 ? pgp_holds_key(r, why, sizeof(why)) :
			    epochkeys_holds_key(&e, r, why, sizeof(why));
			if (held)
				SHA256(r->public_data, r->public_len, v->digests[v->n++]);
			else
				log_warnx("%s: key %.16s not vouched for (not made or imported here?): %s", r->address,
				    r->fingerprint, why);
		}
		key_list_release(&list);
	}
	memcpy(rep->data, v->digests, v->n * 32);
	rep->len = v->n * 32;
out:
	pthread_mutex_unlock(&state_lock);
	return st;
}

/* Is req a held-key request (khproto.h)?  The record's ID copied to id. */
static bool
held_request_ok(const struct kh_request *req, char id[KEYSTORE_HELD_ID_LEN + 1], struct cables_err *err)
{
	if (req->key != KH_KEY_SMIME || req->md_nid != 0 || strcmp(req->address, "@held") != 0 ||
	    strspn(req->fingerprint, "0") != KH_FPR_LEN || req->len != HELD_KEY_REQUEST_LEN) {
		cables_fail(err, CABLES_ERR_ARG, "not \"@held\", NID 0, a zero fingerprint, an ID and a %d-byte salt",
		    HELD_SALT_LEN);
		return false;
	}
	memcpy(id, req->data, KEYSTORE_HELD_ID_LEN);
	id[KEYSTORE_HELD_ID_LEN] = '\0';
	if (strspn(id, "0123456789abcdef") != KEYSTORE_HELD_ID_LEN) {
		cables_fail(err, CABLES_ERR_ARG, "not a held message ID (16 lowercase hex digits)");
		return false;
	}
	return true;
}

/*
 * KH_OP_HELD_KEY: the key that seals one held message (lib/heldseal.h),
 * for the milter's User and root only.  keyd's KeydUser resubmits held
 * messages but must not read them (doc/hold.md), so it is refused here
 * although it may ask for other things.  Not charged to a bucket: there
 * is no address to charge, and the key opens only a message the milter
 * had in the clear when it held it.
 */
static enum kh_status
held_key(const struct client *c, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	char id[KEYSTORE_HELD_ID_LEN + 1];
	enum kh_status st;

	if (c->uid != 0 && !(milter_uid_set && c->uid == milter_uid)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "held-message keys are for the milter's User only "
		    "(cables-keyd must not read held messages)");
		return KH_REFUSED;
	}
	if (!held_request_ok(req, id, err))
		return KH_REFUSED;
	/* Two HMACs: derived under the lock rather than copying the store key out. */
	pthread_mutex_lock(&state_lock);
	if ((st = store_key_ready(err)) == KH_OK)
		held_key_derive(store_key, id, req->data + KEYSTORE_HELD_ID_LEN, rep->data);
	pthread_mutex_unlock(&state_lock);
	if (st == KH_OK)
		rep->len = HELD_KEY_LEN;
	return st;
}

/*
 * A decryption req performed failed.  While the failure bucket has a token
 * it is answered "failed", charged to that bucket, and gives its decrypt
 * token back.  With no failure token left (or KeyholderFailureRateLimit 0),
 * a PKCS#1 v1.5 decryption is answered with its substitute key sub instead
 * (khop_substitute, implicit rejection) and keeps its decrypt token, as a
 * success does: "failed" answers beyond the limit would make the keyholder
 * a fast padding oracle, and so would a decrypt bucket that paid only for
 * conforming blocks (a milter watching for "rate-limited" would read the
 * padding off it); refusing the address's decryptions would let anyone who
 * sends it junk stop its mail.  Other failures (an OAEP block that is no
 * encoding, a point not on the curve) tell nothing that depends on the key
 * and stay "failed".  True when rep holds the substitute.
 */
static bool
settle_failure(const struct kh_request *req, const struct kh_reply *sub, struct kh_reply *rep)
{
	bool counted;

	pthread_mutex_lock(&state_lock);
	counted = bucket_cap(BUCKET_FAILURE) > 0 && bucket_take(req->address, BUCKET_FAILURE);
	if (counted)
		bucket_give(req->address, BUCKET_DECRYPT);
	pthread_mutex_unlock(&state_lock);
	if (!counted && req->op == KH_OP_RSA_DECRYPT && sub->status == KH_OK) {
		memcpy(rep, sub, sizeof(*rep));
		return true;
	}
	rep->status = KH_FAILED;
	return false;
}

/* Answer the request in c->buf; false when the reply could not be sent. */
static bool
serve(struct client *c)
{
	struct kh_request req;
	struct kh_reply rep;
	struct cables_err err;
	uint8_t wire[KH_REPLY_SIZE];
	struct kh_reply sub;		/* a PKCS#1 v1.5 decryption's substitute key (settle_failure) */
	struct cables_err ignored;
	struct unwrap_params up;
	EVP_PKEY *key = NULL;
	bool sent, substituted = false;

	err.msg[0] = '\0';
	if (kh_request_decode(&req, c->buf, &err) != CABLES_OK) {
		log_warnx("peer uid %u pid %d dropped: malformed request: %s", (unsigned)c->uid, (int)c->pid, err.msg);
		return false;
	}
	memset(&rep, 0, sizeof(rep));
	if (req.op == KH_OP_EXCHANGE_SIGN) {
		rep.status = exchange_sign(c, &req, &rep, &err);
	} else if (req.op == KH_OP_EPOCH_CURRENT) {
		rep.status = epoch_current(c, &req, &rep, &err);
	} else if (req.op == KH_OP_VOUCH) {
		rep.status = vouch(c, &req, &rep, &err);
	} else if (req.op == KH_OP_HELD_KEY) {
		rep.status = held_key(c, &req, &rep, &err);
	} else if (c->uid != 0 && !(milter_uid_set && c->uid == milter_uid)) {
		rep.status = KH_REFUSED;	/* keyd's user: exchange signatures and current epoch keys only */
		cables_fail(&err, CABLES_ERR_UNUSABLE, "keyd's KeydUser may ask for exchange signatures, epoch keys and vouches only");
	} else {
		pthread_mutex_lock(&state_lock);
		rep.status = authorise(&req, &key, &up, &err);
		pthread_mutex_unlock(&state_lock);
		/*
		 * Every PKCS#1 v1.5 decryption makes its substitute, used or
		 * not, so that one that fails takes no longer than one that
		 * succeeds (a compromised milter could time them).
		 */
		sub.status = KH_FAILED;
		if (rep.status == KH_OK && req.op == KH_OP_RSA_DECRYPT)
			khop_substitute(key, &req, &sub, &ignored);
		if (rep.status == KH_OK)
			rep.status = req.op == KH_OP_PGP_ECDH_UNWRAP ? khop_pgp_ecdh_unwrap(key, &up.k, &req, &rep, &err) :
			    khop_perform(key, &req, &rep, &err);
		if (rep.status == KH_FAILED && key != NULL && is_decryption(req.op))
			substituted = settle_failure(&req, &sub, &rep);
	}
	EVP_PKEY_free(key);
	log_info("uid=%u %s %s%s %s=%.16s: %s%s%s%s", (unsigned)c->uid, req.address, req.key == KH_KEY_PGP ? "pgp-" : "",
	    kh_op_name(req.op), req.key == KH_KEY_PGP ? "keyid" : "fingerprint",
	    req.key == KH_KEY_PGP ? req.fingerprint + 40 : req.fingerprint,
	    substituted ? "failed" : kh_status_name(rep.status), rep.status == KH_OK && !substituted ? "" : ": ",
	    rep.status == KH_OK && !substituted ? "" : err.msg,
	    substituted ? " (over KeyholderFailureRateLimit: answered with a substitute key)" : "");
	kh_reply_encode(wire, &rep, NULL);
	sent = write_fully(c->fd, wire, sizeof(wire));
	OPENSSL_cleanse(&req, sizeof(req));
	OPENSSL_cleanse(&rep, sizeof(rep));
	OPENSSL_cleanse(&sub, sizeof(sub));
	OPENSSL_cleanse(wire, sizeof(wire));
	return sent;
}

/* Has c sent nothing for KeyholderIdleTimeout?  Logged once, when it is closed for it. */
static bool
idle_expired(struct client *c)
{
	long long idle;

	if (cfg->keyholder_idle_timeout_ms == 0)
		return false;
	pthread_mutex_lock(&state_lock);
	idle = monotonic_ms() - c->idle_since;
	pthread_mutex_unlock(&state_lock);
	if (idle < (long long)cfg->keyholder_idle_timeout_ms)
		return false;
	log_info("peer uid %u pid %d closed: idle for %lld s (KeyholderIdleTimeout)", (unsigned)c->uid, (int)c->pid,
	    idle / 1000);
	return true;
}

/*
 * One whole request into c->buf: false when the peer is gone, was idle for
 * KeyholderIdleTimeout before its request, was closed to make room, or
 * began a request and did not finish it within FRAME_TIMEOUT_MS.
 */
static bool
read_request(struct client *c)
{
	size_t have = 0;
	long long deadline = 0;

	while (have < sizeof(c->buf) && !stopping) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		int wait = have == 0 ? 1000 : (int)(deadline - monotonic_ms());
		ssize_t n;

		if (have > 0 && wait <= 0) {
			log_warnx("peer uid %u pid %d dropped: an incomplete request", (unsigned)c->uid, (int)c->pid);
			return false;
		}
		if (have == 0 && idle_expired(c))
			return false;
		if (poll(&p, 1, wait) <= 0)
			continue;
		n = read(c->fd, c->buf + have, sizeof(c->buf) - have);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return false;
		if (n > 0 && have == 0)
			deadline = monotonic_ms() + FRAME_TIMEOUT_MS;
		if (n > 0)
			have += (size_t)n;
	}
	return have == sizeof(c->buf);
}

/* Take c out of clients[] (unless it was evicted, which did); under state_lock. */
static void
client_remove(struct client *c)
{
	if (c->evicted)
		return;
	for (size_t i = 0; i < cfg->keyholder_clients; i++)
		if (clients[i] == c) {
			clients[i] = NULL;
			nclients--;
			return;
		}
}

/*
 * Mark c as being answered (never closed to make room) or done with its
 * answer (idle from now); false when it was closed to make room meanwhile.
 */
static bool
client_busy(struct client *c, bool busy)
{
	bool evicted;

	pthread_mutex_lock(&state_lock);
	c->busy = busy;
	if (!busy)
		c->idle_since = monotonic_ms();
	evicted = c->evicted;
	pthread_mutex_unlock(&state_lock);
	return !evicted;
}

static void *
client_thread(void *arg)
{
	struct client *c = arg;

	while (read_request(c) && client_busy(c, true) && serve(c)) {
		OPENSSL_cleanse(c->buf, sizeof(c->buf));
		client_busy(c, false);
	}
	/* Only this thread closes the fd, after leaving the table: an eviction never meets a reused fd. */
	pthread_mutex_lock(&state_lock);
	client_remove(c);
	pthread_mutex_unlock(&state_lock);
	close(c->fd);
	OPENSSL_clear_free(c, sizeof(*c));
	return NULL;
}

/*
 * A free slot for a new client of uid, under state_lock: when every slot is
 * taken, a connection not being answered is shut down and its slot given to
 * the newcomer, so connections that send nothing, or a byte, cannot lock
 * anyone out.  The victim is the one idle the longest (since it connected
 * or was last answered, so a request begun and never finished counts as
 * idle) among the connections of the peer uid holding the most slots (the
 * newcomer's own uid on a tie): one peer (a compromised milter, or keyd,
 * which faces the network) flooding the keyholder with connections only
 * ever closes its own, never the other's.
 * KeyholderClients when there is none.
 */
static size_t
client_slot(uid_t uid)
{
	struct { uid_t uid; size_t n; } per[4];
	size_t nper = 0, victim = cfg->keyholder_clients, most = 0;
	uid_t heavy = uid;
	struct client *v;

	for (size_t i = 0; i < cfg->keyholder_clients; i++) {
		size_t k;

		if (clients[i] == NULL)
			return i;
		if (clients[i]->busy)
			continue;
		for (k = 0; k < nper && per[k].uid != clients[i]->uid; k++)
			;
		if (k == nper && nper < sizeof(per) / sizeof(per[0])) {
			per[nper].uid = clients[i]->uid;
			per[nper++].n = 0;
		}
		if (k < nper)
			per[k].n++;
	}
	/* root, User and KeydUser are the only peers accepted: a few uids at most. */
	for (size_t k = 0; k < nper; k++)
		if (per[k].n > most || (per[k].n == most && per[k].uid == uid)) {
			most = per[k].n;
			heavy = per[k].uid;
		}
	for (size_t i = 0; i < cfg->keyholder_clients; i++)
		if (!clients[i]->busy && clients[i]->uid == heavy && (victim == cfg->keyholder_clients ||
		    clients[i]->idle_since < clients[victim]->idle_since))
			victim = i;
	if (victim == cfg->keyholder_clients)
		return victim;
	v = clients[victim];
	log_warnx("peer uid %u pid %d closed: idle for %lld ms, its slot given to a new client of uid %u "
	    "(KeyholderClients %zu)", (unsigned)v->uid, (int)v->pid, monotonic_ms() - v->idle_since, (unsigned)uid,
	    cfg->keyholder_clients);
	shutdown(v->fd, SHUT_RDWR);	/* its thread sees the end and closes it */
	v->evicted = true;
	clients[victim] = NULL;
	nclients--;
	return victim;
}

static void
accept_client(int lfd)
{
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	struct timeval tv = { 5, 0 };
	struct client *c;
	pthread_t tid;
	size_t slot;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0) {
		log_warn("peer credentials");
		close(fd);
		return;
	}
	if (cred.uid != 0 && !(milter_uid_set && cred.uid == milter_uid) && !(keyd_uid_set && cred.uid == keyd_uid)) {
		log_warnx("peer uid %u pid %d refused: neither root nor the milter's User nor keyd's KeydUser",
		    (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->idle_since = monotonic_ms();
	pthread_mutex_lock(&state_lock);
	if ((slot = client_slot(cred.uid)) < cfg->keyholder_clients) {
		clients[slot] = c;
		nclients++;
	}
	pthread_mutex_unlock(&state_lock);
	if (slot == cfg->keyholder_clients) {
		log_warnx("peer uid %u pid %d refused: %zu clients already, each being answered",
		    (unsigned)cred.uid, (int)cred.pid, cfg->keyholder_clients);
		close(fd);
		free(c);
		return;
	}
	if (pthread_create(&tid, NULL, client_thread, c) != 0) {
		log_warnx("peer uid %u pid %d refused: no thread for it", (unsigned)cred.uid, (int)cred.pid);
		pthread_mutex_lock(&state_lock);
		client_remove(c);
		pthread_mutex_unlock(&state_lock);
		close(fd);
		free(c);
		return;
	}
	pthread_detach(tid);
}

/*
 * Forget the unsealed copies of the deleted epoch key fpr: an S/MIME one
 * is cached under its certificate's fingerprint, an OpenPGP one under
 * "primary || key ID", whose primary part is the epoch row's name (the
 * epoch subkey's fingerprint).
 */
static void
forget_epoch_key(const char *fpr)
{
	size_t len = strlen(fpr);

	pthread_mutex_lock(&state_lock);
	auths_flush();	/* the keyholder's own write: the data version does not tell */
	for (size_t i = nkeys; i-- > 0;)
		if ((keys[i].kind == KH_KEY_SMIME && strcmp(keys[i].fingerprint, fpr) == 0) ||
		    (keys[i].kind == KH_KEY_PGP && len == 40 && strncmp(keys[i].fingerprint, fpr, 40) == 0)) {
			EVP_PKEY_free(keys[i].key);
			keys[i] = keys[--nkeys];
		}
	pthread_mutex_unlock(&state_lock);
}

/* A deleted epoch key's unsealed copy goes at once; the store no longer names it anyway. */
static void
epoch_report(void *arg, enum epochkeys_event ev, const char *address, const char *fpr, long long when,
    const char *why)
{
	(void)arg;
	switch (ev) {
	case EPOCHKEYS_MADE:
		log_info("epoch key %.16s made for %s, expires %lld, deleted after %lld", fpr, address, when,
		    when + (long long)(cfg->epoch_key_grace_ms / 1000));
		break;
	case EPOCHKEYS_DELETED:
		forget_epoch_key(fpr);
		log_info("epoch key %.16s of %s deleted (expired %lld)", fpr, address, when);
		break;
	case EPOCHKEYS_FAILED:
		log_warnx("epoch keys: %s: %.16s: %s", address, fpr, why);
		break;
	case EPOCHKEYS_IGNORED:
		log_warnx("epoch keys: %s: %.16s ignored (neither served nor counted; not made here?): %s", address, fpr,
		    why);
		break;
	}
}

/*
 * One round of epoch key upkeep (doc/key-exchange.md, "Forward secrecy:
 * epoch keys"), in a thread of its own: making a week's keys for
 * thousands of users takes seconds, and neither new connections nor
 * requests wait for it.  It works with its own copy of the store key (a
 * SIGHUP may wipe the shared one meanwhile), wiped when it is done.
 */
static void *
epoch_round(void *arg)
{
	uint8_t key[SEAL_KEY_LEN];
	struct epochkeys_env e;
	struct epochkeys_counts n;
	struct cables_err err;
	enum kh_status st;

	(void)arg;
	pthread_mutex_lock(&state_lock);
	if ((st = store_ready(&err)) == KH_OK)
		memcpy(key, store_key, sizeof(key));
	pthread_mutex_unlock(&state_lock);
	if (st != KH_OK) {
		log_warnx("epoch keys: not looked after: %s", err.msg);
		epoch_busy = 0;
		return NULL;
	}
	memset(&e, 0, sizeof(e));
	e.ks = ks;
	e.store_key = key;
	e.local_domains = &cfg->local_domains;
	e.times.lifetime = (long long)(cfg->epoch_key_lifetime_ms / 1000);
	e.times.grace = (long long)(cfg->epoch_key_grace_ms / 1000);
	e.report = epoch_report;
	if (epochkeys_maintain(&e, (long long)time(NULL), &n, &err) != CABLES_OK)
		log_warnx("epoch keys: %s", err.msg);
	else
		log_info("epoch keys looked after: %zu made, %zu deleted, %zu failed", n.made, n.deleted, n.failed);
	OPENSSL_cleanse(key, sizeof(key));
	epoch_busy = 0;
	return NULL;
}

/* Start a round unless one is still running (a slow one is not doubled); false when none was started. */
static bool
epoch_round_start(void)
{
	pthread_t tid;
	int rc;

	if (epoch_busy)
		return false;
	epoch_busy = 1;
	if ((rc = pthread_create(&tid, NULL, epoch_round, NULL)) != 0) {
		epoch_busy = 0;
		log_warnx("epoch keys: cannot start a round: %s", strerror(rc));
		return false;
	}
	pthread_detach(tid);
	return true;
}

static void
run(int lfd)
{
	time_t next_epoch_round = 0;

	while (!stopping) {
		struct pollfd p = { lfd, POLLIN, 0 };

		/* A round asked for (SIGHUP) while one runs starts when that one is done. */
		if (time(NULL) >= next_epoch_round && epoch_round_start())
			next_epoch_round = time(NULL) + EPOCH_ROUND_SECS;
		if (poll(&p, 1, 1000) > 0 && (p.revents & POLLIN))
			accept_client(lfd);
		if (flushing) {
			/* SIGHUP: forget unsealed keys and the store key (rotated?); both are read again when needed. */
			flushing = 0;
			next_epoch_round = 0;	/* and look after epoch keys now: keys generated meanwhile get theirs */
			pthread_mutex_lock(&state_lock);
			keys_flush();
			auths_flush();
			nvouches = next_vouch = 0;	/* a new store key may open other seals */
			OPENSSL_cleanse(store_key, sizeof(store_key));
			store_key_loaded = false;
			EVP_PKEY_free(exchange_key);
			exchange_key = NULL;
			pthread_mutex_unlock(&state_lock);
			log_info("SIGHUP: unsealed keys, the store key and the exchange key forgotten");
		}
	}
}

/*
 * The socket: mode 0660 with the milter's group (0600 without one); the mode
 * keeps others out, SO_PEERCRED decides.
 */
static int
listen_on(const char *path, gid_t gid, bool group)
{
	struct cables_err err;
	int fd;

	/*
	 * Its own runtime directory (/run/cables-keyholder), not the milter's: made
	 * here when missing (0750, the milter's group), refused when someone else
	 * could put a socket of theirs in the keyholder's place.
	 */
	if (privdrop_make_dir("KeyholderSocket", path, 0750, group ? gid : (gid_t)-1, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if (privdrop_socket_dir("KeyholderSocket", path, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if ((fd = privdrop_listen("KeyholderSocket", path, group ? gid : (gid_t)-1, group ? 0660 : 0600, 64,
	    &err)) < 0)
		fatalx("%s", err.msg);
	return fd;
}

/* -n: the configuration is one the keyholder can serve; 0 or 1. */
static int
check(const struct config *c)
{
	if (c->keyholder_socket == NULL) {
		fprintf(stderr, "cables-keyholder: %s: KeyholderSocket is none: nowhere to listen\n", c->path);
		return 1;
	}
	if (c->keyholder_user != NULL && getpwnam(c->keyholder_user) == NULL) {
		fprintf(stderr, "cables-keyholder: %s: KeyholderUser %s: no such user\n", c->path, c->keyholder_user);
		return 1;
	}
	if (c->user != NULL && getpwnam(c->user) == NULL) {
		fprintf(stderr, "cables-keyholder: %s: User %s: no such user\n", c->path, c->user);
		return 1;
	}
	if (c->keyd_user != NULL && getpwnam(c->keyd_user) == NULL) {
		fprintf(stderr, "cables-keyholder: %s: KeydUser %s: no such user\n", c->path, c->keyd_user);
		return 1;
	}
	if (c->exchange_key != NULL && access(c->exchange_key, F_OK) != 0) {
		/* Not made yet (cables-keyctl exchange-key generate): read when keyd first asks; private keys need not wait. */
		fprintf(stderr, "cables-keyholder: %s: warning: ExchangeKey %s: %s (no exchange signatures until it is "
		    "there)\n", c->path, c->exchange_key, strerror(errno));
	} else if (c->exchange_key != NULL) {
		/* Read as the check runs (root, or KeyholderUser): the unit's ExecStartPre runs as root. */
		struct cables_err err;
		enum kh_status st;

		cfg = c;
		st = exchange_key_ready(&err);
		EVP_PKEY_free(exchange_key);
		exchange_key = NULL;
		cfg = NULL;
		if (st != KH_OK) {
			fprintf(stderr, "cables-keyholder: %s: %s\n", c->path, err.msg);
			return 1;
		}
	}
	if (c->keyholder_clients < 1 || c->keyholder_clients > CLIENTS_MAX) {
		fprintf(stderr, "cables-keyholder: %s: KeyholderClients %zu: not between 1 and %d\n", c->path,
		    c->keyholder_clients, CLIENTS_MAX);
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config_path = CABLES_DEFAULT_CONFIG;
	bool foreground = false, check_only = false;
	struct rlimit nocore = { 0, 0 };
	struct config *c;
	struct cables_err err;
	struct sigaction sa;
	struct passwd *pw;
	int ch, lfd;

	/* Before OpenSSL allocates anything (it refuses a change after). */
	if (!khwipe_install()) {
		fprintf(stderr, "cables-keyholder: cannot make OpenSSL wipe what it frees\n");
		return 1;
	}
	/* Before anything is read: this process never dumps core. */
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	while ((ch = getopt(argc, argv, "c:fnh")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check_only = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if ((c = config_load(config_path, true, &err)) == NULL) {
		fprintf(stderr, "cables-keyholder: %s\n", err.msg);
		return 1;
	}
	if ((ch = check(c)) != 0 || check_only) {
		if (ch == 0)
			printf("cables-keyholder: %s: configuration OK\n", c->path);
		config_free(c);
		return ch;
	}
	cfg = c;
	buckets_init(c);
	clients = xcalloc(c->keyholder_clients, sizeof(*clients));
	if (log_open("cables-keyholder", c->log_facility, c->keyholder_log_file, foreground, &err) != CABLES_OK) {
		fprintf(stderr, "cables-keyholder: %s\n", err.msg);
		return 1;
	}
	if (c->user != NULL && (pw = getpwnam(c->user)) != NULL) {
		milter_uid = pw->pw_uid;
		milter_uid_set = true;
	}
	if (c->keyd_user != NULL && (pw = getpwnam(c->keyd_user)) != NULL) {
		keyd_uid = pw->pw_uid;
		keyd_uid_set = !(milter_uid_set && keyd_uid == milter_uid);
		if (!keyd_uid_set)
			log_warnx("KeydUser %s is the milter's User: no exchange signatures for it", c->keyd_user);
	}
	pw = c->user != NULL ? getpwnam(c->user) : NULL;
	lfd = listen_on(c->keyholder_socket, pw != NULL ? pw->pw_gid : 0, pw != NULL);
	if (!foreground && daemon(0, 0) != 0)
		fatalx("cannot become a daemon: %s", strerror(errno));
	if (c->keyholder_user != NULL && privdrop_to("KeyholderUser", c->keyholder_user, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (store_ready(&err) != KH_OK)
		log_warnx("private keys unavailable until this can be read: %s", err.msg);
	log_info("listening on %s for root%s%s (config %s)", c->keyholder_socket, milter_uid_set ? " and User " : "",
	    milter_uid_set ? c->user : "", c->path);
	run(lfd);
	/* Client threads see stopping within a second; the process ends with them, keys freed and wiped first. */
	pthread_mutex_lock(&state_lock);
	keys_flush();
	auths_flush();
	OPENSSL_cleanse(store_key, sizeof(store_key));
	store_key_loaded = false;
	EVP_PKEY_free(exchange_key);
	exchange_key = NULL;
	unlink(c->keyholder_socket);
	log_info("stopped");
	_exit(0);
}
