/* pgp - OpenPGP keys and PGP/MIME encryption with GPGME; see pgp.h. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base64.h"
#include "pgp.h"
#include "privdrop.h"
#include "pgp_packet.h"

extern char **environ;

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;
static const char *gpgme_version;
static char *default_home;	/* set by the first pgp_init(), never changed */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

static void
gpgme_setup(void)
{
	gpgme_version = gpgme_check_version("1.11.0");
}

static cables_status
gpg_fail(struct cables_err *err, cables_status st, const char *what, gpgme_error_t e)
{
	return cables_fail(err, st, "%s: %s", what, gpgme_strerror(e));
}

/*
 * gpg.conf of a home Cables owns: never look keys up anywhere, never try
 * secret keys on a hidden recipient (the caller checks the key IDs a
 * message names against its recipients' keys first), and trust what the
 * key store decided (keys are named by fingerprint).
 */
static cables_status
write_gpg_conf(const char *home, struct cables_err *err)
{
	static const char conf[] = "# Written by Cables; the key store decides which keys are used.\n"
	    "skip-hidden-recipients\nno-auto-key-retrieve\nauto-key-locate local\ntrust-model always\n";
	char *path = xasprintf("%s/gpg.conf", home), *tmp = xasprintf("%s/gpg.conf.tmp", home);
	FILE *fp = fopen(tmp, "w");
	cables_status st = CABLES_OK;

	if (fp == NULL || fputs(conf, fp) == EOF || fclose(fp) != 0 || rename(tmp, path) != 0)
		st = cables_fail(err, CABLES_ERR_IO, "GnuPGHome %s: writing gpg.conf: %s", home, strerror(errno));
	free(path);
	free(tmp);
	return st;
}

cables_status
pgp_init(const char *home, struct cables_err *err)
{
	struct stat sb;
	gpgme_error_t e;
	cables_status st = CABLES_OK;

	pthread_once(&gpgme_once, gpgme_setup);
	if (gpgme_version == NULL)
		return cables_fail(err, CABLES_ERR_INTERNAL, "GPGME is older than 1.11.0");
	if ((e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP)) != 0)
		return gpg_fail(err, CABLES_ERR_INTERNAL, "no usable gpg for GPGME", e);
	if (strlen(home) > 80)
		return cables_fail(err, CABLES_ERR_ARG, "GnuPGHome %s: longer than 80 characters (gpg-agent's "
		    "socket path would not fit)", home);
	if (stat(home, &sb) != 0) {
		if (errno != ENOENT || mkdir(home, 0700) != 0 || stat(home, &sb) != 0)
			return cables_fail(err, CABLES_ERR_IO, "GnuPGHome %s: %s", home, strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return cables_fail(err, CABLES_ERR_ARG, "GnuPGHome %s: not a directory", home);
	if (sb.st_uid != geteuid())
		return cables_fail(err, CABLES_ERR_ARG, "GnuPGHome %s: owned by uid %lu, not by this user (%lu): "
		    "chown -R it to the milter's User", home, (unsigned long)sb.st_uid, (unsigned long)geteuid());
	if ((sb.st_mode & 077) != 0 && chmod(home, 0700) != 0)
		return cables_fail(err, CABLES_ERR_IO, "GnuPGHome %s: chmod 0700: %s", home, strerror(errno));
	if ((st = write_gpg_conf(home, err)) != CABLES_OK)
		return st;
	/*
	 * The first home is every context's default: GPGME runs "gpg --version"
	 * each time a context's engine is changed, which would double the gpg
	 * processes per message.  Other homes (keyctl, tests) are set per context.
	 */
	pthread_mutex_lock(&default_lock);
	if (default_home == NULL) {
		if ((e = gpgme_set_engine_info(GPGME_PROTOCOL_OpenPGP, NULL, home)) != 0)
			st = gpg_fail(err, CABLES_ERR_INTERNAL, "setting the GnuPG home", e);
		else
			default_home = xstrdup(home);
	}
	pthread_mutex_unlock(&default_lock);
	return st;
}

/* gpg must never wait for a person: an empty passphrase, always. */
static gpgme_error_t
no_passphrase(void *hook, const char *uid_hint, const char *info, int prev_bad, int fd)
{
	if (prev_bad)
		return gpgme_error(GPG_ERR_CANCELED);
	return gpgme_io_writen(fd, "\n", 1) == 0 ? 0 : gpgme_error_from_syserror();
}

static cables_status
ctx_new(const char *home, gpgme_ctx_t *ctx, struct cables_err *err)
{
	gpgme_error_t e;
	bool same;

	pthread_once(&gpgme_once, gpgme_setup);
	if (gpgme_version == NULL)
		return cables_fail(err, CABLES_ERR_INTERNAL, "GPGME is older than 1.11.0");
	if ((e = gpgme_new(ctx)) != 0)
		return gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_new", e);
	pthread_mutex_lock(&default_lock);
	same = default_home != NULL && strcmp(default_home, home) == 0;
	pthread_mutex_unlock(&default_lock);
	if ((e = gpgme_set_protocol(*ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (!same && (e = gpgme_ctx_set_engine_info(*ctx, GPGME_PROTOCOL_OpenPGP, NULL, home)) != 0) ||
	    (e = gpgme_set_pinentry_mode(*ctx, GPGME_PINENTRY_MODE_LOOPBACK)) != 0) {
		gpgme_release(*ctx);
		*ctx = NULL;
		return gpg_fail(err, CABLES_ERR_INTERNAL, "setting up GPGME", e);
	}
	gpgme_set_passphrase_cb(*ctx, no_passphrase, NULL);
	gpgme_set_offline(*ctx, 1);
	gpgme_set_keylist_mode(*ctx, GPGME_KEYLIST_MODE_LOCAL);
	return CABLES_OK;
}

bool
pgp_data_is_openpgp(const uint8_t *data, size_t len)
{
	static const char armor[] = "-----BEGIN PGP ";

	for (size_t i = 0; i + sizeof(armor) - 1 <= len && i < 4096; i++)
		if (memcmp(data + i, armor, sizeof(armor) - 1) == 0 && (i == 0 || data[i - 1] == '\n'))
			return true;
	/* A binary packet: bit 7 set; new format 0xC0|tag, old format 0x80|tag<<2.  Keys are tags 5 and 6. */
	if (len < 2 || (data[0] & 0x80) == 0)
		return false;
	if ((data[0] & 0x40) != 0)
		return (data[0] & 0x3f) == 5 || (data[0] & 0x3f) == 6;
	return ((data[0] >> 2) & 0x0f) == 5 || ((data[0] >> 2) & 0x0f) == 6;
}

static void
fpr_copy(char out[PGP_FPR_LEN + 1], const char *fpr)
{
	strlcpy_c(out, fpr != NULL ? fpr : "", PGP_FPR_LEN + 1);
	str_lower(out);
}

cables_status
pgp_import(const char *home, const uint8_t *data, size_t len, char (*fprs)[PGP_FPR_LEN + 1], size_t max,
    size_t *n, struct cables_err *err)
{
	gpgme_ctx_t ctx;
	gpgme_data_t d;
	gpgme_import_result_t res;
	gpgme_error_t e;
	cables_status st;

	*n = 0;
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((e = gpgme_data_new_from_mem(&d, (const char *)data, len, 0)) != 0) {
		gpgme_release(ctx);
		return gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_data_new_from_mem", e);
	}
	e = gpgme_op_import(ctx, d);
	res = e == 0 ? gpgme_op_import_result(ctx) : NULL;
	if (e != 0) {
		/* gpg itself failed (bad data is a result with nothing considered, below). */
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpg could not import OpenPGP data", e);
	} else if (res == NULL || res->considered == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "no OpenPGP key in the data");
	} else {
		const char *why = NULL;

		for (gpgme_import_status_t s = res->imports; s != NULL; s = s->next) {
			char f[PGP_FPR_LEN + 1];
			bool dup = false;

			if (s->result != 0) {
				why = gpgme_strerror(s->result);
				continue;
			}
			if (s->fpr == NULL || strlen(s->fpr) != PGP_FPR_LEN)
				continue;
			fpr_copy(f, s->fpr);
			for (size_t i = 0; i < *n && !dup; i++)
				dup = strcmp(fprs[i], f) == 0;
			if (!dup && *n < max)
				memcpy(fprs[(*n)++], f, sizeof(f));
		}
		if (*n == 0)
			st = cables_fail(err, CABLES_ERR_SYNTAX, "no usable OpenPGP key in the data%s%s",
			    why != NULL ? ": " : "", why != NULL ? why : " (only v4 keys are supported)");
	}
	gpgme_data_release(d);
	gpgme_release(ctx);
	return st;
}

void
pgp_key_info_release(struct pgp_key_info *k)
{
	for (size_t i = 0; i < k->nemails; i++)
		free(k->emails[i]);
	free(k->emails);
	free(k->subkeys);
	k->emails = NULL;
	k->nemails = 0;
	k->subkeys = NULL;
	k->nsubkeys = 0;
}

/*
 * Does the store row (data, len) itself hold the (sub)key with fingerprint
 * fpr?  gpg merges keys with the same primary in the home (an epoch key's
 * public form into the long-term key), so its listing of a row may show
 * subkeys that another row brought.  A row that is not binary packets
 * (armored) is taken as gpg lists it.
 */
static bool
row_holds(const uint8_t *data, size_t len, const char *fpr)
{
	struct pgp_packet_header h;
	size_t pos = 0;

	if (data == NULL || fpr == NULL)
		return data == NULL;
	while (pos < len) {
		if (pgp_packet_header_read(data + pos, len - pos, &h, NULL) != CABLES_OK ||
		    h.kind != PGP_LENGTH_DEFINITE || h.body_len > len - pos - h.header_len)
			return pos == 0;
		if ((h.tag == 6 || h.tag == 14) && h.body_len > 0 && h.body_len <= 0xffff &&
		    data[pos + h.header_len] == 4) {
			uint8_t head[3] = { 0x99, (uint8_t)(h.body_len >> 8), (uint8_t)h.body_len }, md[20];
			char hex[41];
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
			    EVP_DigestUpdate(c, head, sizeof(head)) == 1 &&
			    EVP_DigestUpdate(c, data + pos + h.header_len, h.body_len) == 1 &&
			    EVP_DigestFinal_ex(c, md, NULL) == 1;

			EVP_MD_CTX_free(c);
			if (ok) {
				hex_encode(md, sizeof(md), hex);
				hex[40] = '\0';
				if (str_ieq(hex, fpr))
					return true;
			}
		}
		pos += h.header_len + h.body_len;
	}
	return false;
}

/* Latest expiry of the row's own subkeys usable for a purpose: -1 none, 0 never, else Unix time. */
static long long
usable_until(gpgme_key_t key, const uint8_t *data, size_t len, bool encrypt)
{
	long long until = -1;

	for (gpgme_subkey_t sk = key->subkeys; sk != NULL; sk = sk->next) {
		if (sk->revoked || sk->invalid || sk->disabled || !(encrypt ? sk->can_encrypt : sk->can_sign) ||
		    (sk != key->subkeys && !row_holds(data, len, sk->fpr)))
			continue;
		if (sk->expires == 0)
			return 0;
		if ((long long)sk->expires > until)
			until = sk->expires;
	}
	return until;
}

struct key_facts {
	struct pgp_key_info info;
	long long encrypt_until, sign_until;
};

/* Is sk the row's own (the primary, or a subkey the row's bytes hold; data NULL: any)? */
static bool
own_subkey(gpgme_key_t key, gpgme_subkey_t sk, const uint8_t *data, size_t len)
{
	return sk == key->subkeys || row_holds(data, len, sk->fpr);
}

/* What gpg lists of key, limited to the (sub)keys of the store row (data, len; NULL: all of them). */
static void
facts_from_key(gpgme_key_t key, const uint8_t *data, size_t len, struct key_facts *f)
{
	memset(f, 0, sizeof(*f));
	fpr_copy(f->info.fpr, key->subkeys != NULL ? key->subkeys->fpr : key->fpr);
	for (gpgme_subkey_t sk = key->subkeys; sk != NULL; sk = sk->next) {
		if (!own_subkey(key, sk, data, len))
			continue;
		char *a = gpgme_pubkey_algo_string(sk);

		f->info.subkeys = xreallocarray(f->info.subkeys, f->info.nsubkeys + 1, sizeof(*f->info.subkeys));
		fpr_copy(f->info.subkeys[f->info.nsubkeys++], sk->fpr);
		size_t used = strlen(f->info.algo);

		snprintf(f->info.algo + used, sizeof(f->info.algo) - used, "%s%s", used > 0 ? "/" : "",
		    a != NULL ? a : "?");
		gpgme_free(a);
	}
	/* What gpg would sign with: the newest valid signing (sub)key; and the newest encryption one. */
	long newest = -1, newest_enc = -1;

	for (gpgme_subkey_t sk = key->subkeys; sk != NULL; sk = sk->next) {
		if (sk->revoked || sk->expired || sk->invalid || sk->disabled || sk->fpr == NULL ||
		    strlen(sk->fpr) != PGP_FPR_LEN || !own_subkey(key, sk, data, len))
			continue;
		if (sk->can_sign && sk->timestamp > newest) {
			newest = sk->timestamp;
			strlcpy_c(f->info.sign_keyid, sk->fpr + PGP_FPR_LEN - 16, sizeof(f->info.sign_keyid));
			str_lower(f->info.sign_keyid);
		}
		if (sk->can_encrypt && sk->timestamp > newest_enc) {
			newest_enc = sk->timestamp;
			fpr_copy(f->info.encrypt_fpr, sk->fpr);
		}
	}
	if (key->subkeys != NULL) {
		f->info.created = key->subkeys->timestamp;
		f->info.expires = key->subkeys->expires;
	}
	f->info.revoked = key->revoked;
	f->info.expired = key->expired;
	f->info.disabled = key->disabled;
	f->info.invalid = key->invalid;
	f->encrypt_until = usable_until(key, data, len, true);
	f->sign_until = usable_until(key, data, len, false);
	f->info.can_encrypt = f->encrypt_until >= 0;
	f->info.can_sign = f->sign_until >= 0;
	for (gpgme_user_id_t u = key->uids; u != NULL; u = u->next) {
		/* A revoked or expired key makes its user IDs invalid: keep them, so the reason given is the key's. */
		if (((u->revoked || u->invalid) && !key->revoked && !key->expired) || u->email == NULL || u->email[0] == '\0')
			continue;
		f->info.emails = xreallocarray(f->info.emails, f->info.nemails + 1, sizeof(char *));
		f->info.emails[f->info.nemails] = xstrdup(u->email);
		str_lower(f->info.emails[f->info.nemails++]);
	}
}

static cables_status
get_key(gpgme_ctx_t ctx, const char *fpr, bool secret, gpgme_key_t *key, struct cables_err *err)
{
	gpgme_error_t e = gpgme_get_key(ctx, fpr, key, secret);

	if (gpgme_err_code(e) == GPG_ERR_EOF || gpgme_err_code(e) == GPG_ERR_NO_PUBKEY ||
	    gpgme_err_code(e) == GPG_ERR_NO_SECKEY)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "no OpenPGP %skey %s in the GnuPG home",
		    secret ? "secret " : "", fpr);
	if (e != 0)
		return gpg_fail(err, CABLES_ERR_INTERNAL, "looking up an OpenPGP key", e);
	return CABLES_OK;
}

cables_status
pgp_key_get(const char *home, const char *fpr, struct pgp_key_info *info, struct cables_err *err)
{
	struct key_facts f;
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	cables_status st;

	memset(info, 0, sizeof(*info));
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((st = get_key(ctx, fpr, false, &key, err)) == CABLES_OK) {
		facts_from_key(key, NULL, 0, &f);
		*info = f.info;
		gpgme_key_unref(key);
		if (get_key(ctx, fpr, true, &key, NULL) == CABLES_OK) {
			info->secret = true;
			gpgme_key_unref(key);
		}
	}
	gpgme_release(ctx);
	return st;
}

cables_status
pgp_export(const char *home, const char *fpr, bool secret, bool armor, struct buf *out, struct cables_err *err)
{
	gpgme_ctx_t ctx;
	gpgme_data_t d;
	gpgme_error_t e;
	cables_status st;
	char *mem;
	size_t len = 0;

	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((e = gpgme_data_new(&d)) != 0) {
		gpgme_release(ctx);
		return gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_data_new", e);
	}
	gpgme_set_armor(ctx, armor);
	e = gpgme_op_export(ctx, fpr, secret ? GPGME_EXPORT_MODE_SECRET : 0, d);
	mem = gpgme_data_release_and_get_mem(d, &len);
	if (e != 0)
		st = gpg_fail(err, CABLES_ERR_CRYPTO, "exporting an OpenPGP key", e);
	else if (mem == NULL || len == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no OpenPGP %skey %s in the GnuPG home",
		    secret ? "secret " : "", fpr);
	else
		buf_append(out, mem, len);
	if (mem != NULL) {
		OPENSSL_cleanse(mem, len);
		gpgme_free(mem);
	}
	gpgme_release(ctx);
	return st;
}

cables_status
pgp_delete(const char *home, const char *fpr, struct cables_err *err)
{
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	gpgme_error_t e;
	cables_status st;

	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((st = get_key(ctx, fpr, false, &key, err)) == CABLES_ERR_NOTFOUND) {
		st = CABLES_OK;
	} else if (st == CABLES_OK) {
		if ((e = gpgme_op_delete_ext(ctx, key, GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE)) != 0)
			st = gpg_fail(err, CABLES_ERR_CRYPTO, "deleting an OpenPGP key", e);
		gpgme_key_unref(key);
	}
	gpgme_release(ctx);
	return st;
}

/* Every secret key gpg lists in home, by fingerprint: at most max into fprs. */
static cables_status
secret_fprs(const char *home, char (*fprs)[PGP_FPR_LEN + 1], size_t max, size_t *n, struct cables_err *err)
{
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	gpgme_error_t e;
	cables_status st;

	*n = 0;
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((e = gpgme_op_keylist_start(ctx, NULL, 1)) != 0)
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "listing secret keys", e);
	while (st == CABLES_OK && gpgme_op_keylist_next(ctx, &key) == 0) {
		if (*n < max && key->subkeys != NULL && key->subkeys->fpr != NULL)
			fpr_copy(fprs[(*n)++], key->subkeys->fpr);
		gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	gpgme_release(ctx);
	return st;
}

/* Key files gpg-agent keeps (private-keys-v1.d/<keygrip>.key) that no listed key accounted for. */
static size_t
remove_key_files(const char *home)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *d;
	size_t removed = 0;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/private-keys-v1.d", home);
	if ((dp = opendir(dir)) == NULL)
		return 0;
	while ((d = readdir(dp)) != NULL) {
		size_t len = strlen(d->d_name);

		if (len > 4 && strcmp(d->d_name + len - 4, ".key") == 0 &&
		    snprintf(path, sizeof(path), "%s/%s", dir, d->d_name) < (int)sizeof(path) && unlink(path) == 0)
			removed++;
	}
	closedir(dp);
	return removed;
}

cables_status
pgp_remove_secrets(const char *home, char (*fprs)[PGP_FPR_LEN + 1], size_t max, size_t *n, size_t *files,
    struct cables_err *err)
{
	char (*all)[PGP_FPR_LEN + 1] = xcalloc(PGP_SECRETS_MAX, sizeof(*all));
	size_t found;
	cables_status st;

	*n = *files = 0;
	if ((st = secret_fprs(home, all, PGP_SECRETS_MAX, &found, err)) == CABLES_OK)
		for (size_t i = 0; i < found && st == CABLES_OK; i++)
			if ((st = pgp_delete(home, all[i], err)) == CABLES_OK && *n < max)
				strlcpy_c(fprs[(*n)++], all[i], sizeof(fprs[0]));
	free(all);
	if (st == CABLES_OK)
		*files = remove_key_files(home);
	return st;
}

bool
pgp_algo_parse(const char *s, enum pgp_algo *out)
{
	if (str_ieq(s, "ed25519"))
		*out = PGP_ALGO_ED25519;
	else if (str_ieq(s, "rsa3072"))
		*out = PGP_ALGO_RSA3072;
	else
		return false;
	return true;
}

cables_status
pgp_generate(const char *home, const char *addr, enum pgp_algo algo, unsigned int days, char fpr[PGP_FPR_LEN + 1],
    struct cables_err *err)
{
	const char *primary = algo == PGP_ALGO_ED25519 ? "ed25519" : "rsa3072";
	const char *sub = algo == PGP_ALGO_ED25519 ? "cv25519" : "rsa3072";
	unsigned int flags = GPGME_CREATE_NOPASSWD | GPGME_CREATE_FORCE | (days == 0 ? GPGME_CREATE_NOEXPIRE : 0);
	unsigned long expires = (unsigned long)days * 86400UL;
	gpgme_genkey_result_t res;
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	gpgme_error_t e;
	cables_status st;
	char *uid;

	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	uid = xasprintf("<%s>", addr);
	e = gpgme_op_createkey(ctx, uid, primary, 0, expires, NULL, flags | GPGME_CREATE_CERT | GPGME_CREATE_SIGN);
	free(uid);
	if (e != 0 || (res = gpgme_op_genkey_result(ctx)) == NULL || res->fpr == NULL) {
		st = gpg_fail(err, CABLES_ERR_CRYPTO, "generating an OpenPGP key", e);
		goto out;
	}
	fpr_copy(fpr, res->fpr);
	if ((st = get_key(ctx, fpr, true, &key, err)) != CABLES_OK)
		goto out;
	e = gpgme_op_createsubkey(ctx, key, sub, 0, expires, flags | GPGME_CREATE_ENCR);
	gpgme_key_unref(key);
	if (e != 0)
		st = gpg_fail(err, CABLES_ERR_CRYPTO, "generating an OpenPGP encryption subkey", e);
out:
	gpgme_release(ctx);
	return st;
}

/*
 * What pgp_check() learnt of a key, by the SHA-256 of the store's bytes.
 * Direct-mapped and bounded: a collision just evicts.
 */
#define CHECK_CACHE_SIZE 256

struct check_entry {
	bool used;
	uint8_t digest[32];
	char *home;
	struct key_facts facts;
};

static struct check_entry check_cache[CHECK_CACHE_SIZE];
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

static void
entry_clear(struct check_entry *c)
{
	if (!c->used)
		return;
	free(c->home);
	pgp_key_info_release(&c->facts.info);
	memset(c, 0, sizeof(*c));
}

void
pgp_cache_clear(void)
{
	pthread_mutex_lock(&check_lock);
	for (size_t i = 0; i < CHECK_CACHE_SIZE; i++)
		entry_clear(&check_cache[i]);
	pthread_mutex_unlock(&check_lock);
}

static void
facts_copy(struct key_facts *dst, const struct key_facts *src)
{
	*dst = *src;
	dst->info.emails = src->info.nemails > 0 ? xcalloc(src->info.nemails, sizeof(char *)) : NULL;
	for (size_t i = 0; i < src->info.nemails; i++)
		dst->info.emails[i] = xstrdup(src->info.emails[i]);
	dst->info.subkeys = src->info.nsubkeys > 0 ? xcalloc(src->info.nsubkeys, sizeof(*src->info.subkeys)) : NULL;
	if (src->info.nsubkeys > 0)
		memcpy(dst->info.subkeys, src->info.subkeys, src->info.nsubkeys * sizeof(*src->info.subkeys));
}

/* The facts of the one key in data, from the cache or by importing it into the home. */
static cables_status
key_facts(const char *home, const uint8_t *data, size_t len, struct key_facts *f, struct cables_err *err)
{
	uint8_t digest[32];
	unsigned int dlen = 0;
	struct check_entry *c;
	char fprs[2][PGP_FPR_LEN + 1];
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	size_t n;
	cables_status st;

	if (!EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL))
		return cables_fail(err, CABLES_ERR_INTERNAL, "SHA-256 failed");
	c = &check_cache[digest[0] % CHECK_CACHE_SIZE];
	pthread_mutex_lock(&check_lock);
	if (c->used && memcmp(c->digest, digest, 32) == 0 && strcmp(c->home, home) == 0) {
		facts_copy(f, &c->facts);
		pthread_mutex_unlock(&check_lock);
		return CABLES_OK;
	}
	pthread_mutex_unlock(&check_lock);
	/*
	 * Store rows were checked when they were stored: gpg not reading one is
	 * this server's failure (a broken GnuPG home, gpg itself), so that mail
	 * waits instead of being refused for want of a key.
	 */
	if ((st = pgp_import(home, data, len, fprs, 2, &n, err)) != CABLES_OK) {
		if (err != NULL) {
			char msg[CABLES_ERR_MAX];

			strlcpy_c(msg, err->msg, sizeof(msg));
			cables_fail(err, CABLES_ERR_INTERNAL, "gpg cannot read a stored OpenPGP key (GnuPGHome %s): %s",
			    home, msg);
		}
		return CABLES_ERR_INTERNAL;
	}
	if (n != 1)
		return cables_fail(err, CABLES_ERR_SYNTAX, "the key store row holds %zu OpenPGP keys, not one", n);
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	if ((st = get_key(ctx, fprs[0], false, &key, err)) == CABLES_OK) {
		facts_from_key(key, data, len, f);
		gpgme_key_unref(key);
		pthread_mutex_lock(&check_lock);
		entry_clear(c);
		c->used = true;
		memcpy(c->digest, digest, 32);
		c->home = xstrdup(home);
		facts_copy(&c->facts, f);
		pthread_mutex_unlock(&check_lock);
	}
	gpgme_release(ctx);
	return st;
}

cables_status
pgp_inspect(const char *home, const uint8_t *data, size_t len, struct pgp_key_info *info, struct cables_err *err)
{
	struct key_facts f;
	cables_status st;

	memset(info, 0, sizeof(*info));
	if ((st = key_facts(home, data, len, &f, err)) == CABLES_OK)
		*info = f.info;
	return st;
}

cables_status
pgp_temp_home(const char *tmpdir, char path[64], struct cables_err *err)
{
	struct cables_err why;

	path[0] = '\0';
	/*
	 * Not in a TempDir another user may write without the sticky bit, or
	 * owns (the milter's spool): they could rename the home and put a
	 * link to a directory of theirs in its place, and gpg would write the
	 * secret there.  /tmp then (root's, sticky).
	 */
	if (privdrop_temp_dir("TempDir", tmpdir, &why) != CABLES_OK) {
		if (privdrop_temp_dir("TempDir", "/tmp", NULL) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "%s; and /tmp may not hold it either", why.msg);
		tmpdir = "/tmp";
	}
	/* path names a directory only once mkdtemp made it: callers remove what path names. */
	if (snprintf(path, 64, "%s/cables-gpg.XXXXXX", tmpdir) >= 64) {
		path[0] = '\0';
		return cables_fail(err, CABLES_ERR_ARG, "TempDir %s: too long for a GnuPG home", tmpdir);
	}
	if (mkdtemp(path) == NULL) {	/* mode 0700 */
		path[0] = '\0';
		return cables_fail(err, CABLES_ERR_IO, "creating a GnuPG home in %s: %s", tmpdir, strerror(errno));
	}
	return pgp_init(path, err);
}

/*
 * Remove what can be removed and go on: gpg-agent, told to stop, deletes
 * its sockets while we walk, and an entry gone under us must not end the
 * walk (nftw stops at the first non-zero return) and leave the secret key
 * files in private-keys-v1.d behind.
 */
static int
remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)remove(p);
	return 0;
}

void
pgp_temp_home_remove(const char *path)
{
	pid_t pid;
	char *argv[] = { "gpgconf", "--homedir", (char *)path, "--kill", "all", NULL };
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	struct stat sb;
	int status;

	if (posix_spawnp(&pid, "gpgconf", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &status, 0);
	/* The agent exits on its own time and may still write (random_seed): again until gone, for 2 s at most. */
	for (int i = 0; i < 100; i++) {
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		if (lstat(path, &sb) != 0)
			break;
		nanosleep(&pause, NULL);
	}
}

cables_status
pgp_check(const char *home, const uint8_t *data, size_t len, const char *addr, const struct addr_opts *ao,
    enum pgp_use use, time_t now, char fpr[PGP_FPR_LEN + 1], struct cables_err *err)
{
	struct key_facts f;
	long long until;
	bool named = false;
	char day[16];
	cables_status st;

	if ((st = key_facts(home, data, len, &f, err)) != CABLES_OK)
		return st;
	memcpy(fpr, f.info.fpr, PGP_FPR_LEN + 1);
	until = use == PGP_USE_ENCRYPT ? f.encrypt_until : f.sign_until;
	for (size_t i = 0; i < f.info.nemails && !named; i++) {
		char *norm = addr_normalize(f.info.emails[i], ao);

		named = norm != NULL && strcmp(norm, addr) == 0;
		free(norm);
	}
	if (f.info.revoked)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s is revoked", f.info.fpr);
	else if (f.info.invalid || f.info.disabled)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s is %s", f.info.fpr,
		    f.info.invalid ? "invalid" : "disabled");
	else if (f.info.expires != 0 && f.info.expires <= now) {
		format_day(f.info.expires, day, sizeof(day));
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s expired on %s", f.info.fpr, day);
	} else if (f.info.created > now + 86400) {
		format_day(f.info.created, day, sizeof(day));
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s is created in the future (%s)", f.info.fpr, day);
	} else if (until < 0) {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s has no valid %s key", f.info.fpr,
		    use == PGP_USE_ENCRYPT ? "encryption" : "signing");
	} else if (until != 0 && until <= now) {
		format_day(until, day, sizeof(day));
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s: its %s subkey expired on %s", f.info.fpr,
		    use == PGP_USE_ENCRYPT ? "encryption" : "signing", day);
	} else if (!named) {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s has no user ID for %s", f.info.fpr, addr);
	}
	pgp_key_info_release(&f.info);
	return st;
}

/* Reading an entity (or a spool range, as a one-piece entity) for gpg. */
struct reader {
	struct entity_reader r;
	struct cables_err err;
	bool failed;
};

static void
reader_init(struct reader *rd, const struct entity_src *src)
{
	entity_reader_init(&rd->r, src);
	rd->err.msg[0] = '\0';
	rd->failed = false;
}

static ssize_t
read_cb(void *arg, void *p, size_t n)
{
	struct reader *rd = arg;
	size_t got;

	if (entity_read(&rd->r, p, n, &got, &rd->err) != CABLES_OK) {
		rd->failed = true;
		errno = EIO;
		return -1;
	}
	return (ssize_t)got;
}

/* gpg's armor (LF line ends) to the sink with CRLF, in chunks. */
struct writer {
	struct byte_sink *sink;
	char chunk[16384];
	size_t used;
	bool last_cr;
	cables_status st;
	struct cables_err err;
};

static bool
writer_flush(struct writer *w)
{
	if (w->used > 0 && w->st == CABLES_OK)
		w->st = w->sink->write(w->sink->arg, w->chunk, w->used, &w->err);
	w->used = 0;
	return w->st == CABLES_OK;
}

/* A failure reading gpg's input or writing its output (w may be NULL), or CABLES_OK. */
static cables_status
io_failure(const struct reader *rd, const struct writer *w, struct cables_err *err)
{
	if (rd->failed) {
		if (err != NULL)
			*err = rd->err;
		return CABLES_ERR_IO;
	}
	if (w != NULL && w->st != CABLES_OK) {
		if (err != NULL)
			*err = w->err;
		return w->st;
	}
	return CABLES_OK;
}

static ssize_t
write_cb(void *arg, const void *p, size_t n)
{
	struct writer *w = arg;
	const char *s = p;

	for (size_t i = 0; i < n; i++) {
		if (w->used + 2 > sizeof(w->chunk) && !writer_flush(w)) {
			errno = EIO;
			return -1;
		}
		if (s[i] == '\n' && !w->last_cr)
			w->chunk[w->used++] = '\r';
		w->chunk[w->used++] = s[i];
		w->last_cr = s[i] == '\r';
	}
	return (ssize_t)n;
}

static cables_status
write_text(struct writer *w, const char *text)
{
	write_cb(w, text, strlen(text));
	return w->st;
}

cables_status
pgp_encrypt(const char *home, const struct pgp_encrypt_opts *o, const char *const *fprs, size_t n,
    const struct entity_src *in, struct byte_sink *out, char content_type[160], struct cables_err *err)
{
	struct gpgme_data_cbs rcbs = { read_cb, NULL, NULL, NULL }, wcbs = { NULL, write_cb, NULL, NULL };
	struct reader rd;
	struct writer *w;
	gpgme_data_t plain = NULL, cipher = NULL;
	gpgme_ctx_t ctx;
	gpgme_key_t signer = NULL;
	gpgme_encrypt_result_t res;
	gpgme_error_t e;
	struct buf recp;
	uint8_t rnd[12];
	char boundary[40], text[400];
	cables_status st;
	unsigned int flags = GPGME_ENCRYPT_ALWAYS_TRUST | GPGME_ENCRYPT_NO_ENCRYPT_TO;

	if (n == 0)
		return cables_fail(err, CABLES_ERR_ARG, "no OpenPGP recipient");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return cables_fail(err, CABLES_ERR_INTERNAL, "no random bytes for a MIME boundary");
	memcpy(boundary, "=-cables-", 9);
	hex_encode(rnd, sizeof(rnd), boundary + 9);
	snprintf(content_type, 160, "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"%s\"",
	    boundary);
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK)
		return st;
	w = xcalloc(1, sizeof(*w));
	w->sink = out;
	buf_init(&recp);
	for (size_t i = 0; i < n; i++)
		buf_printf(&recp, "%s\n", fprs[i]);
	if (o->hidden)
		flags |= GPGME_ENCRYPT_THROW_KEYIDS;
	if (o->no_compress)
		flags |= GPGME_ENCRYPT_NO_COMPRESS;
	gpgme_set_armor(ctx, 1);
	reader_init(&rd, in);
	if ((e = gpgme_data_new_from_cbs(&plain, &rcbs, &rd)) != 0 ||
	    (e = gpgme_data_new_from_cbs(&cipher, &wcbs, w)) != 0) {
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_data_new_from_cbs", e);
		goto out;
	}
	gpgme_data_set_encoding(plain, GPGME_DATA_ENCODING_BINARY);
	if (o->sign_fpr != NULL) {
		if ((st = get_key(ctx, o->sign_fpr, true, &signer, err)) != CABLES_OK)
			goto out;
		if ((e = gpgme_signers_add(ctx, signer)) != 0) {
			st = gpg_fail(err, CABLES_ERR_CRYPTO, "adding the OpenPGP signer", e);
			goto out;
		}
	}
	snprintf(text, sizeof(text), "This is an OpenPGP/MIME encrypted message (RFC 3156).\n--%s\n"
	    "Content-Type: application/pgp-encrypted\nContent-Description: PGP/MIME version identification\n\n"
	    "Version: 1\n\n--%s\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\n"
	    "Content-Description: OpenPGP encrypted message\nContent-Disposition: inline; filename=\"encrypted.asc\"\n\n",
	    boundary, boundary);
	if (write_text(w, text) != CABLES_OK) {
		st = io_failure(&rd, w, err);
		goto out;
	}
	if (o->sign_fpr != NULL)
		e = gpgme_op_encrypt_sign_ext(ctx, NULL, recp.data, flags, plain, cipher);
	else
		e = gpgme_op_encrypt_ext(ctx, NULL, recp.data, flags, plain, cipher);
	if ((st = io_failure(&rd, w, err)) != CABLES_OK)
		goto out;
	if (e != 0) {
		res = gpgme_op_encrypt_result(ctx);
		if (res != NULL && res->invalid_recipients != NULL)
			st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP encryption: key %s: %s",
			    res->invalid_recipients->fpr != NULL ? res->invalid_recipients->fpr : "?",
			    gpgme_strerror(res->invalid_recipients->reason));
		else
			st = gpg_fail(err, CABLES_ERR_CRYPTO, "OpenPGP encryption", e);
		goto out;
	}
	snprintf(text, sizeof(text), "\n--%s--\n", boundary);
	if (write_text(w, text) != CABLES_OK || !writer_flush(w))
		st = io_failure(&rd, w, err);
out:
	gpgme_data_release(plain);
	gpgme_data_release(cipher);
	if (signer != NULL)
		gpgme_key_unref(signer);
	buf_release(&recp);
	gpgme_release(ctx);
	OPENSSL_cleanse(w, sizeof(*w));
	free(w);
	return st;
}

/* Decoding the armored message in [from, to) of a spool, a piece at a time. */
struct armor_dec {
	struct spool_lines r;
	struct b64_decoder d;
	bool in_headers, data, done;
	bool message;		/* the armor says "PGP MESSAGE" */
};

static void
armor_dec_init(struct armor_dec *a, const struct spool *sp, off_t from, off_t to)
{
	memset(a, 0, sizeof(*a));
	b64_decoder_init(&a->d);
	spool_lines_init(&a->r, sp, from, to);
}

/* Decode lines into bin until it holds at least max bytes or the armor ends (a->done). */
static cables_status
armor_dec_more(struct armor_dec *a, struct buf *bin, size_t max, struct cables_err *err)
{
	const char *line;
	size_t len;
	off_t off;
	bool at_start, whole;
	cables_status st;

	while (!a->done && bin->len < max) {
		if ((st = spool_lines_next(&a->r, &line, &len, &off, &at_start, &whole, err)) != CABLES_OK)
			return st;
		if (len == 0)
			break;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
		    line[len - 1] == '\t'))
			len--;
		if (!a->data) {
			if (!a->in_headers && len >= 15 && memcmp(line, "-----BEGIN PGP ", 15) == 0) {
				a->in_headers = true;
				a->message = len == 27 && memcmp(line + 15, "MESSAGE-----", 12) == 0;
			} else if (a->in_headers && len == 0) {
				a->data = true;
			}
			continue;
		}
		/* A blank line, the checksum or the END line ends the data. */
		if (at_start && (len == 0 || line[0] == '=' || line[0] == '-'))
			break;
		if ((st = b64_decode_update(&a->d, (const uint8_t *)line, len, bin, err)) != CABLES_OK)
			return st;
	}
	if (bin->len < max)
		a->done = true;
	return CABLES_OK;
}

/*
 * The first max bytes of the armored message in [from, to) of sp, decoded
 * into bin; *message tells whether the armor says "PGP MESSAGE".
 */
static cables_status
armor_prefix(const struct spool *sp, off_t from, off_t to, size_t max, struct buf *bin, bool *message,
    struct cables_err *err)
{
	struct armor_dec *a = xmalloc(sizeof(*a));
	cables_status st;

	armor_dec_init(a, sp, from, to);
	st = armor_dec_more(a, bin, max, err);
	*message = a->message;
	free(a);
	return st;
}

cables_status
pgp_message_keyids(const struct spool *sp, off_t from, off_t to, char (*ids)[17], size_t max, size_t *n,
    struct cables_err *err)
{
	struct pgp_packet_header h;
	struct buf bin;
	size_t pos = 0;
	bool message;
	cables_status st;

	*n = 0;
	buf_init(&bin);
	/* The session key packets come first: 64 KB of packets is hundreds of recipients. */
	if ((st = armor_prefix(sp, from, to, 65536, &bin, &message, err)) != CABLES_OK) {
		buf_release(&bin);
		return st;
	}
	/* Session-key packets (tags 1 and 3) and markers (tag 10), definite lengths, until anything else. */
	while (*n < max && pos < bin.len &&
	    pgp_packet_header_read((const uint8_t *)bin.data + pos, bin.len - pos, &h, NULL) == CABLES_OK &&
	    h.kind == PGP_LENGTH_DEFINITE &&
	    (h.tag == PGP_TAG_PKESK || h.tag == PGP_TAG_SKESK || h.tag == PGP_TAG_MARKER)) {
		if (h.tag == PGP_TAG_PKESK && h.body_len <= bin.len - pos - h.header_len &&
		    pgp_packet_pkesk_keyid((const uint8_t *)bin.data + pos + h.header_len, h.body_len, ids[*n]))
			(*n)++;
		if (h.body_len > bin.len - pos - h.header_len)
			break;
		pos += h.header_len + h.body_len;
	}
	buf_release(&bin);
	return CABLES_OK;
}

cables_status
pgp_message_pkesk(const struct spool *sp, off_t from, off_t to, const char id[17], uint8_t body[PGP_PKESK_MAX],
    size_t *len, struct cables_err *err)
{
	struct buf bin;
	const uint8_t *b;
	bool message;
	cables_status st;

	*len = 0;
	buf_init(&bin);
	st = armor_prefix(sp, from, to, PGP_PACKET_PREFIX_MAX, &bin, &message, err);
	if (st == CABLES_OK && !message)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: the armor is not a PGP MESSAGE");
	if (st == CABLES_OK &&
	    (st = pgp_packet_find_pkesk((const uint8_t *)bin.data, bin.len, id, &b, len, err)) == CABLES_OK) {
		if (*len > PGP_PKESK_MAX)
			st = cables_fail(err, CABLES_ERR_TOOBIG, "OpenPGP: a session-key packet of %zu bytes", *len);
		else
			memcpy(body, b, *len);
	}
	buf_release(&bin);
	return st;
}

cables_status
pgp_message_check(const struct spool *sp, off_t from, off_t to, struct cables_err *err)
{
	struct buf bin;
	bool message;
	cables_status st;

	buf_init(&bin);
	st = armor_prefix(sp, from, to, PGP_PACKET_PREFIX_MAX, &bin, &message, err);
	if (st == CABLES_OK && !message)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the armor is not a PGP MESSAGE");
	else if (st == CABLES_OK)
		st = pgp_packet_is_encrypted((const uint8_t *)bin.data, bin.len, NULL, err);
	buf_release(&bin);
	return st;
}

bool
pgp_key_has(const char *home, const uint8_t *data, size_t len, const char *fpr)
{
	struct key_facts f;
	bool yes = false;

	if (key_facts(home, data, len, &f, NULL) != CABLES_OK)
		return false;
	for (size_t i = 0; i < f.info.nsubkeys && !yes; i++)
		yes = str_ieq(f.info.subkeys[i], fpr);
	pgp_key_info_release(&f.info);
	return yes;
}

/* The verification result of ctx's last operation into v. */
static void
verify_result(gpgme_ctx_t ctx, struct pgp_verify *v)
{
	gpgme_verify_result_t vr = gpgme_op_verify_result(ctx);
	gpgme_signature_t sg;

	if (vr == NULL || vr->signatures == NULL)
		return;
	sg = vr->signatures;
	v->signed_ = true;
	if (sg->fpr != NULL)
		fpr_copy(v->fpr, strlen(sg->fpr) >= PGP_FPR_LEN ? sg->fpr + strlen(sg->fpr) - PGP_FPR_LEN : sg->fpr);
	if (gpgme_err_code(sg->status) == GPG_ERR_NO_ERROR)
		v->good = true;
	else if (gpgme_err_code(sg->status) == GPG_ERR_NO_PUBKEY)
		snprintf(v->reason, sizeof(v->reason), "signing key %s is not in the key store",
		    sg->fpr != NULL ? sg->fpr : "?");
	else
		snprintf(v->reason, sizeof(v->reason), "bad signature: %s", gpgme_strerror(sg->status));
}

#define SIGNATURE_MAX (64 * 1024)

cables_status
pgp_verify_detached(const char *home, const struct spool *sp, off_t from, off_t to, off_t sig_from, off_t sig_to,
    struct pgp_verify *v, struct cables_err *err)
{
	struct gpgme_data_cbs rcbs = { read_cb, NULL, NULL, NULL };
	struct entity_src src;
	struct reader rd;
	gpgme_data_t text = NULL, sig = NULL;
	gpgme_ctx_t ctx;
	gpgme_error_t e;
	size_t len = (size_t)(sig_to - sig_from), got;
	char *sigbuf;
	cables_status st;

	memset(v, 0, sizeof(*v));
	if (sig_to < sig_from || len > SIGNATURE_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "OpenPGP signature part larger than 64 KB");
	sigbuf = xmalloc(len + 1);
	if ((st = spool_pread(sp, sig_from, sigbuf, len, &got, err)) != CABLES_OK) {
		free(sigbuf);
		return st;
	}
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK) {
		free(sigbuf);
		return st;
	}
	entity_src_init(&src);
	entity_src_spool(&src, sp, from, to);
	reader_init(&rd, &src);
	if ((e = gpgme_data_new_from_mem(&sig, sigbuf, got, 0)) != 0 ||
	    (e = gpgme_data_new_from_cbs(&text, &rcbs, &rd)) != 0) {
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_data_new", e);
		goto out;
	}
	e = gpgme_op_verify(ctx, sig, text, NULL);
	st = io_failure(&rd, NULL, err);
	if (st == CABLES_OK && e != 0 && gpgme_err_code(e) != GPG_ERR_NO_DATA) {
		st = gpg_fail(err, CABLES_ERR_SYNTAX, "OpenPGP signature", e);
	} else if (st == CABLES_OK) {
		verify_result(ctx, v);
		if (!v->signed_)
			st = cables_fail(err, CABLES_ERR_SYNTAX, "the signature part holds no OpenPGP signature");
	}
out:
	gpgme_data_release(sig);
	gpgme_data_release(text);
	gpgme_release(ctx);
	free(sigbuf);
	return st;
}

/*
 * gpg's input when decrypting: the binary message, its session-key packets
 * cut down to the ones naming the keys to decrypt with (pgp_packet.h), then
 * the rest decoded from the armor as gpg reads it.  Only the front is held
 * (PGP_PACKET_PREFIX_MAX, then a chunk at a time), whatever the size.
 */
#define CIPHER_CHUNK 16384

struct cipher_reader {
	struct armor_dec a;
	struct buf bin;		/* decoded, gpg has read bin[0..used) */
	size_t used;
	bool failed;
	struct cables_err err;
};

static cables_status
cipher_reader_open(struct cipher_reader *cr, const struct spool *sp, off_t from, off_t to, const char (*keep)[17],
    size_t nkeep, struct cables_err *err)
{
	struct cables_err why;
	size_t len, kept;
	cables_status st;

	armor_dec_init(&cr->a, sp, from, to);
	buf_init(&cr->bin);
	if ((st = armor_dec_more(&cr->a, &cr->bin, PGP_PACKET_PREFIX_MAX, err)) != CABLES_OK)
		return st;
	if (!cr->a.message)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: the armor is not a PGP MESSAGE");
	len = cr->bin.len;
	if ((st = pgp_packet_keep_pkesks((uint8_t *)cr->bin.data, &len, keep, nkeep, &kept, &why)) != CABLES_OK)
		return cables_fail(err, st, "OpenPGP: %s", why.msg);
	cr->bin.len = len;
	return CABLES_OK;
}

static ssize_t
cipher_read_cb(void *arg, void *p, size_t n)
{
	struct cipher_reader *cr = arg;
	size_t k;

	if (cr->used == cr->bin.len) {
		buf_reset(&cr->bin);
		cr->used = 0;
		if (armor_dec_more(&cr->a, &cr->bin, CIPHER_CHUNK, &cr->err) != CABLES_OK) {
			cr->failed = true;
			errno = EIO;
			return -1;
		}
	}
	k = n < cr->bin.len - cr->used ? n : cr->bin.len - cr->used;
	memcpy(p, cr->bin.data + cr->used, k);
	cr->used += k;
	return (ssize_t)k;
}

/* gpg's status lines during decryption: DECRYPTION_KEY names the (sub)key that opened the session key. */
static gpgme_error_t
decrypt_status(void *arg, const char *keyword, const char *args)
{
	struct pgp_verify *v = arg;
	size_t n;

	if (keyword == NULL || args == NULL || strcmp(keyword, "DECRYPTION_KEY") != 0)
		return 0;
	n = strcspn(args, " ");
	if (n == PGP_FPR_LEN && v->decrypted_by[0] == '\0') {
		memcpy(v->decrypted_by, args, n);
		v->decrypted_by[n] = '\0';
		str_lower(v->decrypted_by);
	}
	return 0;
}

/* A failure writing gpg's output, or CABLES_OK. */
static cables_status
writer_status(const struct writer *w, struct cables_err *err)
{
	if (w->st != CABLES_OK && err != NULL)
		*err = w->err;
	return w->st;
}

/* Why gpg did not decrypt. */
static cables_status
decrypt_failure(gpgme_ctx_t ctx, gpgme_error_t e, struct cables_err *err)
{
	gpgme_decrypt_result_t dr = gpgme_op_decrypt_result(ctx);

	if (gpgme_err_code(e) == GPG_ERR_NO_SECKEY)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP: no secret key for this message");
	if (dr != NULL && dr->unsupported_algorithm != NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: unsupported algorithm %s",
		    dr->unsupported_algorithm);
	return gpg_fail(err, CABLES_ERR_CRYPTO, "OpenPGP decryption failed", e);
}

cables_status
pgp_decrypt(const char *home, const struct spool *sp, off_t from, off_t to, const char (*keep)[17], size_t nkeep,
    struct byte_sink *out, struct pgp_verify *v, struct cables_err *err)
{
	return pgp_decrypt_with(home, sp, from, to, keep, nkeep, NULL, out, v, err);
}

cables_status
pgp_decrypt_with(const char *home, const struct spool *sp, off_t from, off_t to, const char (*keep)[17],
    size_t nkeep, const char *session_key, struct byte_sink *out, struct pgp_verify *v, struct cables_err *err)
{
	struct gpgme_data_cbs rcbs = { cipher_read_cb, NULL, NULL, NULL }, wcbs = { NULL, write_cb, NULL, NULL };
	struct cipher_reader *cr;
	struct writer *w;
	gpgme_data_t cipher = NULL, plain = NULL;
	gpgme_ctx_t ctx;
	gpgme_error_t e;
	cables_status st;

	memset(v, 0, sizeof(*v));
	cr = xcalloc(1, sizeof(*cr));
	if ((st = cipher_reader_open(cr, sp, from, to, keep, nkeep, err)) != CABLES_OK) {
		buf_release(&cr->bin);
		free(cr);
		return st;
	}
	if ((st = ctx_new(home, &ctx, err)) != CABLES_OK) {
		buf_release(&cr->bin);
		free(cr);
		return st;
	}
	w = xcalloc(1, sizeof(*w));
	w->sink = out;
	if ((e = gpgme_data_new_from_cbs(&cipher, &rcbs, cr)) != 0 ||
	    (e = gpgme_data_new_from_cbs(&plain, &wcbs, w)) != 0) {
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_data_new_from_cbs", e);
		goto out;
	}
	/* Every status line to decrypt_status: which key decrypted is the caller's to judge. */
	if ((e = gpgme_set_ctx_flag(ctx, "full-status", "1")) != 0) {
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_set_ctx_flag full-status", e);
		goto out;
	}
	/* The session key opened elsewhere (the keyholder): gpg needs no secret key. */
	if (session_key != NULL && (e = gpgme_set_ctx_flag(ctx, "override-session-key", session_key)) != 0) {
		st = gpg_fail(err, CABLES_ERR_INTERNAL, "gpgme_set_ctx_flag override-session-key", e);
		goto out;
	}
	gpgme_set_status_cb(ctx, decrypt_status, v);
	e = gpgme_op_decrypt_verify(ctx, cipher, plain);
	if (cr->failed) {
		*err = cr->err;
		st = CABLES_ERR_IO;
		goto out;
	}
	if ((st = writer_status(w, err)) != CABLES_OK)
		goto out;
	if (e != 0) {
		st = decrypt_failure(ctx, e, err);
		goto out;
	}
	if (!writer_flush(w)) {
		st = writer_status(w, err);
		goto out;
	}
	verify_result(ctx, v);
out:
	gpgme_data_release(cipher);
	gpgme_data_release(plain);
	gpgme_release(ctx);
	OPENSSL_cleanse(w, sizeof(*w));
	free(w);
	buf_release(&cr->bin);
	free(cr);
	return st;
}
