/*
 * pgp - OpenPGP with GPGME: keys in a GnuPG home owned by Cables, and
 * RFC 3156 PGP/MIME encryption.
 *
 * The key store is the record; the GnuPG home (GnuPGHome, 0700) is the
 * working copy that gpg needs to operate on.  Keys are put into the home
 * by importing the store's bytes (pgp_import), and every operation names
 * keys by fingerprint, never by user ID, so what gpg uses is exactly what
 * the store decided.  gpg runs with loopback pinentry and an empty
 * passphrase callback, offline (no dirmngr, no keyserver), and never asks
 * anybody anything.
 *
 * Cost: GPGME runs one gpg process per operation.  pgp_encrypt() is one
 * process per message; usability checks (pgp_check) import and list a key
 * once and are then answered from a cache keyed by the SHA-256 of the
 * key's bytes, so a changed store row is never answered from a stale entry.
 *
 * Every function is thread-safe: each call uses its own GPGME context.
 */
#ifndef CABLES_PGP_H
#define CABLES_PGP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "entity.h"
#include "sink.h"
#include "status.h"
#include "util.h"

#define PGP_FPR_LEN 40	/* v4 fingerprints: 40 hex digits */

struct pgp_key_info {
	char fpr[PGP_FPR_LEN + 1];	/* lowercase hex of the primary key */
	char algo[48];			/* "ed25519/cv25519", "rsa3072/rsa3072" */
	long long created;		/* Unix time */
	long long expires;		/* 0: never (of the primary key) */
	bool can_encrypt, can_sign;	/* some valid subkey can */
	bool revoked, expired, disabled, invalid;
	bool secret;			/* the home holds the secret key */
	char **emails;			/* the user IDs' addresses (lowercase) */
	size_t nemails;
	char (*subkeys)[PGP_FPR_LEN + 1];	/* every (sub)key's fingerprint, primary first */
	size_t nsubkeys;
	char sign_keyid[17];		/* the newest valid signing (sub)key's key ID, lowercase; "" none */
	char encrypt_fpr[PGP_FPR_LEN + 1];	/* the newest valid encryption (sub)key's fingerprint; "" none */
};

void pgp_key_info_release(struct pgp_key_info *k);

/*
 * Create the GnuPG home (mode 0700) when it does not exist, check that it is
 * a directory only its owner can use, and check that GPGME finds a usable
 * gpg.  Call once before anything else in a process.
 */
cables_status pgp_init(const char *home, struct cables_err *err);

/* Does the data look like OpenPGP (armor, or a binary key/message packet)? */
bool pgp_data_is_openpgp(const uint8_t *data, size_t len);

/*
 * Import keys (armored or binary, public or secret) into the home.  The
 * fingerprints of the primary keys imported or already present go to fprs
 * (at most max; *n says how many).  Nothing importable is CABLES_ERR_SYNTAX.
 */
cables_status pgp_import(const char *home, const uint8_t *data, size_t len, char (*fprs)[PGP_FPR_LEN + 1],
    size_t max, size_t *n, struct cables_err *err);

/* What the home knows of a key. */
cables_status pgp_key_get(const char *home, const char *fpr, struct pgp_key_info *info, struct cables_err *err);

/* Export a key: public (binary or armored), or public and secret (binary). */
cables_status pgp_export(const char *home, const char *fpr, bool secret, bool armor, struct buf *out,
    struct cables_err *err);

/* Delete a key (and its secret) from the home; a missing key is fine. */
cables_status pgp_delete(const char *home, const char *fpr, struct cables_err *err);

/*
 * Remove every secret key from the home (with its public key: the store
 * is the record, and keys are imported again when needed), then any key
 * file gpg-agent still keeps in private-keys-v1.d.  The milter holds no
 * OpenPGP secret (the keyholder does; doc/privsep.md) and calls this at
 * start for what an older version imported.  fprs gets the fingerprints
 * removed (at most max, *n of them), *files the stray key files removed.
 */
#define PGP_SECRETS_MAX 4096
cables_status pgp_remove_secrets(const char *home, char (*fprs)[PGP_FPR_LEN + 1], size_t max, size_t *n,
    size_t *files, struct cables_err *err);

enum pgp_algo { PGP_ALGO_ED25519, PGP_ALGO_RSA3072 };

bool pgp_algo_parse(const char *s, enum pgp_algo *out);

/*
 * A new key for addr (user ID "<addr>"): a certification and signing
 * primary key and an encryption subkey, ed25519/cv25519 or
 * rsa3072/rsa3072, expiring after days (0: never), without a passphrase
 * (the key store seals the secret).
 */
cables_status pgp_generate(const char *home, const char *addr, enum pgp_algo algo, unsigned int days,
    char fpr[PGP_FPR_LEN + 1], struct cables_err *err);

/*
 * Can the key in the store row (bytes data, len) encrypt to addr
 * (normalised) at time now?  On success fpr is its fingerprint; a key that
 * may not be used is CABLES_ERR_UNUSABLE with the reason ("revoked",
 * "expired on 2026-01-01", "no encryption subkey", "no user ID for ...").
 * For use SIGN the question is whether it can sign for addr.
 */
enum pgp_use { PGP_USE_ENCRYPT, PGP_USE_SIGN };

cables_status pgp_check(const char *home, const uint8_t *data, size_t len, const char *addr,
    const struct addr_opts *ao, enum pgp_use use, time_t now, char fpr[PGP_FPR_LEN + 1], struct cables_err *err);

/*
 * What the key in a store row is (imported into the home, or from the
 * cache).  Only the row's own (sub)keys count: gpg merges keys with the same
 * primary in the home (a user's epoch key into the long-term key), and a
 * subkey another row brought is not listed, encrypted to or checked here.
 */
cables_status pgp_inspect(const char *home, const uint8_t *data, size_t len, struct pgp_key_info *info,
    struct cables_err *err);

/*
 * A throw-away GnuPG home under tmpdir (for cables-keyctl, tests), and its
 * removal (stopping its gpg-agent first).  path gets at most 64 bytes.
 */
cables_status pgp_temp_home(const char *tmpdir, char path[64], struct cables_err *err);
void pgp_temp_home_remove(const char *path);

/* Drop the usability cache (tests; a reload). */
void pgp_cache_clear(void);

/*
 * PGP/MIME (RFC 3156).  pgp_encrypt() encrypts the entity to every
 * fingerprint (signed in the same pass by sign_fpr unless it is NULL;
 * hiding the key IDs when hidden) and writes the body of a
 * multipart/encrypted entity to out, CRLF line ends; content_type receives
 * the value of its Content-Type field (with a random boundary).
 */
struct pgp_encrypt_opts {
	bool hidden;		/* --throw-keyids */
	const char *sign_fpr;	/* NULL: not signed */
	bool no_compress;	/* no compression packet (padded input: sizes must not depend on the content) */
};

cables_status pgp_encrypt(const char *home, const struct pgp_encrypt_opts *o, const char *const *fprs, size_t n,
    const struct entity_src *in, struct byte_sink *out, char content_type[160], struct cables_err *err);

/*
 * Decryption.  pgp_message_keyids() lists the key IDs (16 lowercase hex
 * digits) that the public-key encrypted session key packets at the start
 * of an armored message name, "0000000000000000" for a hidden recipient;
 * the caller decides from them whether the message is for a recipient
 * before anything is decrypted.  pgp_decrypt() decrypts (and verifies, when
 * signed) the armored message in [from, to) of sp, writing the plaintext to
 * out with CRLF line ends.  gpg gets the message with only the session-key
 * packets naming a key ID in keep[0..nkeep) (pgp_packet_keep_pkesks: no
 * passphrase or hidden-recipient packet, nobody else's), so the secret keys
 * of other users in the shared home cannot open it; the caller still checks
 * v->decrypted_by.  A message naming none of them is CABLES_ERR_NOTFOUND,
 * one that is not an encrypted message CABLES_ERR_SYNTAX, before gpg runs.
 * Only the front of the message is held in memory.  The GnuPG home skips
 * hidden recipients too (gpg.conf, written by pgp_init).
 */
cables_status pgp_message_keyids(const struct spool *sp, off_t from, off_t to, char (*ids)[17], size_t max,
    size_t *n, struct cables_err *err);

/*
 * Is the armored text in [from, to) of sp an encrypted OpenPGP message
 * (pgp_packet.h: session-key packets, then an encrypted data packet)?
 * CABLES_OK when it is; CABLES_ERR_SYNTAX with the reason when it is not
 * (base64 of a plaintext labelled PGP/MIME, a literal data packet, a
 * signature); other errors when the spool cannot be read.
 */
cables_status pgp_message_check(const struct spool *sp, off_t from, off_t to, struct cables_err *err);

struct pgp_verify {
	bool signed_;		/* the message carried a signature */
	bool good;		/* which verified */
	char fpr[PGP_FPR_LEN + 1];	/* of the signing (sub)key, lowercase, or "" */
	char reason[200];	/* why not good */
	/* pgp_decrypt: the (sub)key gpg decrypted the session key with (DECRYPTION_KEY), lowercase, or "" */
	char decrypted_by[PGP_FPR_LEN + 1];
};

cables_status pgp_decrypt(const char *home, const struct spool *sp, off_t from, off_t to, const char (*keep)[17],
    size_t nkeep, struct byte_sink *out, struct pgp_verify *v, struct cables_err *err);

/*
 * pgp_decrypt() with the session key given ("ALGO:HEX", pgp_key.h; NULL:
 * gpg finds it with a secret key of the home): gpg decrypts with it and
 * uses no secret key.  It does not say which key opened the session key
 * then (v->decrypted_by stays ""): the caller knows.
 */
cables_status pgp_decrypt_with(const char *home, const struct spool *sp, off_t from, off_t to,
    const char (*keep)[17], size_t nkeep, const char *session_key, struct byte_sink *out, struct pgp_verify *v,
    struct cables_err *err);

/* The body of the first session-key packet naming key ID id (pgp_packet_find_pkesk), copied into body. */
#define PGP_PKESK_MAX 2048
cables_status pgp_message_pkesk(const struct spool *sp, off_t from, off_t to, const char id[17],
    uint8_t body[PGP_PKESK_MAX], size_t *len, struct cables_err *err);

/*
 * Verify a detached signature (RFC 3156 multipart/signed): the signed bytes
 * are [from, to) of sp, the armored signature [sig_from, sig_to).  The
 * result is in v (signed_ false when the signature part holds none).
 */
cables_status pgp_verify_detached(const char *home, const struct spool *sp, off_t from, off_t to, off_t sig_from,
    off_t sig_to, struct pgp_verify *v, struct cables_err *err);

/* Is fpr (a signing subkey's fingerprint) one of the key in the store row's (sub)keys? */
bool pgp_key_has(const char *home, const uint8_t *data, size_t len, const char *fpr);

#endif
