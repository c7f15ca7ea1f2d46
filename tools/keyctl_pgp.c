/*
 * keyctl_pgp - OpenPGP keys in cables-keyctl: generate, import, export and
 * show.
 *
 * The key store is the record.  Every operation here runs gpg in a
 * throw-away GnuPG home under TempDir and stores the bytes it exported:
 * the public key, and the secret key sealed like an S/MIME private key.
 * The milter puts keys into its own GnuPG home from the store when it needs
 * them, so the two can never disagree for long, and keyctl never touches a
 * home owned by another user.
 */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "keyctl.h"
#include "keystore.h"
#include "pgp.h"
#include "seal.h"
#include "util.h"

/*
 * The throw-away home of this run: it may hold an unsealed secret key
 * (gpg-agent's private-keys-v1.d), so it is removed on every way out:
 * explicitly when done, at exit (keyctl_die() included), and, for the
 * signals that end a program (a terminal's ^C, kill, a closed terminal),
 * by catching them while the home exists: one that arrives then is noted
 * and takes effect once the home is gone (home_done()).  They are caught,
 * not blocked: a blocked signal stays blocked in the gpg that GPGME starts
 * (the mask is inherited, handlers are not), and a gpg that hangs could then
 * be ended by SIGKILL alone.  So ^C (sent to gpg too) ends gpg, and keyctl
 * after removing the home.  SIGKILL cannot be caught; the home is then
 * left, mode 0700 and root's, in a TempDir only root may rename in
 * (pgp_temp_home()).
 */
static char pending_home[64];
static const int ending[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
static struct sigaction saved[sizeof(ending) / sizeof(ending[0])];
static bool catching;
static volatile sig_atomic_t caught;

static void
note_signal(int sig)
{
	if (caught == 0)
		caught = sig;
}

static void
remove_pending_home(void)
{
	struct stat sb;

	if (pending_home[0] != '\0' && lstat(pending_home, &sb) == 0)
		pgp_temp_home_remove(pending_home);
	pending_home[0] = '\0';
}

static void
temp_home(struct ctx *c, char home[64])
{
	struct cables_err err;
	cables_status st;
	static bool registered;

	if (!catching) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = note_signal;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
			sigaction(ending[i], &sa, &saved[i]);
		catching = true;
	}
	if (!registered)
		atexit(remove_pending_home);
	registered = true;
	home[0] = '\0';
	st = pgp_temp_home(c->cfg->temp_dir, home, &err);
	/* Made (home is "" unless mkdtemp made it), even when gpg then failed in it. */
	strlcpy_c(pending_home, home, sizeof(pending_home));
	if (st != CABLES_OK)
		keyctl_die("%s", err.msg);
}

/* The home is no longer needed: removed, then a signal caught meanwhile takes effect. */
static void
home_done(void)
{
	int sig;

	remove_pending_home();
	if (catching) {
		for (size_t i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
			sigaction(ending[i], &saved[i], NULL);
		catching = false;
	}
	sig = caught;	/* one that comes now has its own action again */
	caught = 0;
	if (sig != 0)
		raise(sig);
}

/*
 * What the store already holds of this key goes into the home too, so that
 * gpg merges it: a revocation or a subkey the store knows is never lost by
 * importing an older copy of the key.
 */
static void
merge_stored(struct ctx *c, const char *home, const char *addr, const char *fpr)
{
	struct key_list keys;
	struct cables_err err;
	char fprs[1][PGP_FPR_LEN + 1];
	size_t n;

	if (keystore_lookup(c->ks, addr, "pgp", &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < keys.count; i++)
		if (strcmp(keys.items[i].fingerprint, fpr) == 0 &&
		    pgp_import(home, keys.items[i].public_data, keys.items[i].public_len, fprs, 1, &n, &err) != CABLES_OK)
			keyctl_die("stored OpenPGP key %s of %s: %s", fpr, addr, err.msg);
	key_list_release(&keys);
}

/* Store the key fpr of home for addr; with its secret (sealed) when secret is true. */
static void
store_pgp(struct ctx *c, const char *home, const char *addr, const char *fpr, bool secret, const char *source)
{
	struct pgp_key_info info;
	struct key_record r;
	struct cables_err err;
	struct buf pub, sec;
	uint8_t seal_key[SEAL_KEY_LEN];

	buf_init(&pub);
	buf_init(&sec);
	merge_stored(c, home, addr, fpr);
	if (pgp_export(home, fpr, false, false, &pub, &err) != CABLES_OK ||
	    pgp_key_get(home, fpr, &info, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strlcpy_c(r.format, "pgp", sizeof(r.format));
	strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
	r.public_data = (uint8_t *)pub.data;
	r.public_len = pub.len;
	r.not_before = info.created;
	r.not_after = info.expires != 0 ? info.expires : KEYSTORE_NEVER_EXPIRES;
	r.source = (char *)source;
	if (secret) {
		if (pgp_export(home, fpr, true, false, &sec, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		if (seal_key_load(c->cfg->key_store_key, true, seal_key, &err) != CABLES_OK ||
		    seal_close(seal_key, r.fingerprint, (const uint8_t *)sec.data, sec.len, &r.secret_data, &r.secret_len,
		    &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		OPENSSL_cleanse(seal_key, sizeof(seal_key));
		OPENSSL_cleanse(sec.data, sec.len);
	}
	keyctl_put(c, &r);
	pgp_key_info_release(&info);
	free(r.secret_data);
	buf_release(&pub);
	buf_release(&sec);
}

void
keyctl_pgp_generate(struct ctx *c, const char *addr, const char *algo_name, unsigned long days)
{
	enum pgp_algo algo = PGP_ALGO_ED25519;
	struct pgp_key_info info;
	struct cables_err err;
	char home[64], fpr[PGP_FPR_LEN + 1], until[32];

	if (algo_name != NULL && !pgp_algo_parse(algo_name, &algo))
		keyctl_usage("--algo: '%s' is not ed25519 or rsa3072 (with --pgp)", algo_name);
	temp_home(c, home);
	if (pgp_generate(home, addr, algo, (unsigned int)days, fpr, &err) != CABLES_OK ||
	    pgp_key_get(home, fpr, &info, &err) != CABLES_OK) {
		home_done();
		keyctl_die("%s", err.msg);
	}
	store_pgp(c, home, addr, fpr, true, "generated");
	home_done();
	format_day(info.expires, until, sizeof(until));
	printf("generated OpenPGP key for %s: %s, fingerprint %s, %s%s\n", addr, info.algo, fpr,
	    info.expires != 0 ? "expires " : "does not expire", info.expires != 0 ? until : "");
	pgp_key_info_release(&info);
}

int
keyctl_pgp_import(struct ctx *c, const char *path, const uint8_t *data, size_t len, const char *want, bool force)
{
	char home[64], (*fprs)[PGP_FPR_LEN + 1];
	struct cables_err err;
	size_t n;
	int imported = 0;

	temp_home(c, home);
	fprs = xcalloc(64, sizeof(*fprs));
	if (pgp_import(home, data, len, fprs, 64, &n, &err) != CABLES_OK) {
		home_done();
		keyctl_die("%s: %s", path, err.msg);
	}
	for (size_t i = 0; i < n; i++) {
		struct pgp_key_info info;
		struct buf pub;
		char check_fpr[PGP_FPR_LEN + 1];

		buf_init(&pub);
		if (pgp_key_get(home, fprs[i], &info, &err) != CABLES_OK ||
		    pgp_export(home, fprs[i], false, false, &pub, &err) != CABLES_OK)
			keyctl_die("%s: %s", path, err.msg);
		if (info.nemails == 0)
			fprintf(stderr, "cables-keyctl: skipped OpenPGP key %s: no user ID names an email address\n",
			    fprs[i]);
		for (size_t k = 0; k < info.nemails; k++) {
			char *norm = addr_valid(info.emails[k]) ? addr_normalize(info.emails[k], &c->cfg->addr) : NULL;
			bool usable;

			if (norm == NULL || (want != NULL && strcmp(norm, want) != 0)) {
				free(norm);
				continue;
			}
			usable = pgp_check(home, (const uint8_t *)pub.data, pub.len, norm, &c->cfg->addr, PGP_USE_ENCRYPT,
			    c->now, check_fpr, &err) == CABLES_OK;
			if (!usable && pgp_check(home, (const uint8_t *)pub.data, pub.len, norm, &c->cfg->addr,
			    PGP_USE_SIGN, c->now, check_fpr, NULL) == CABLES_OK) {
				/* Good for checking this sender's signatures, not for encrypting to. */
				store_pgp(c, home, norm, fprs[i], info.secret, "imported");
				printf("imported OpenPGP key for %s: fingerprint %s, for signatures only (%s)\n", norm,
				    fprs[i], err.msg);
				imported++;
			} else if (!usable && !force) {
				fprintf(stderr, "cables-keyctl: refused OpenPGP key %s for %s: %s (--force imports it "
				    "anyway)\n", fprs[i], norm, err.msg);
			} else {
				if (!usable)
					fprintf(stderr, "cables-keyctl: warning: OpenPGP key %s for %s is not usable "
					    "now: %s\n", fprs[i], norm, err.msg);
				store_pgp(c, home, norm, fprs[i], info.secret, "imported");
				printf("imported OpenPGP key for %s: fingerprint %s%s\n", norm, fprs[i],
				    info.secret ? ", with secret key" : "");
				imported++;
			}
			free(norm);
		}
		pgp_key_info_release(&info);
		buf_release(&pub);
	}
	free(fprs);
	home_done();
	return imported;
}

bool
keyctl_pgp_export(struct ctx *c, const struct key_record *r, bool private, int fd)
{
	char home[64], fprs[1][PGP_FPR_LEN + 1];
	uint8_t seal_key[SEAL_KEY_LEN], *sec = NULL;
	size_t sec_len = 0, n;
	struct cables_err err;
	struct buf out;

	if (private && r->secret_data == NULL)
		return false;
	temp_home(c, home);
	buf_init(&out);
	if (pgp_import(home, r->public_data, r->public_len, fprs, 1, &n, &err) != CABLES_OK) {
		home_done();
		keyctl_die("stored OpenPGP key %s of %s: %s", r->fingerprint, r->address, err.msg);
	}
	if (private) {
		if (seal_key_load(c->cfg->key_store_key, false, seal_key, &err) != CABLES_OK ||
		    seal_open(seal_key, r->fingerprint, r->secret_data, r->secret_len, &sec, &sec_len, &err) != CABLES_OK ||
		    pgp_import(home, sec, sec_len, fprs, 1, &n, &err) != CABLES_OK) {
			home_done();
			keyctl_die("secret key of %s: %s", r->address, err.msg);
		}
		OPENSSL_cleanse(seal_key, sizeof(seal_key));
		seal_free_secret(sec, sec_len);
	}
	if (pgp_export(home, r->fingerprint, false, true, &out, &err) != CABLES_OK ||
	    (private && pgp_export(home, r->fingerprint, true, true, &out, &err) != CABLES_OK)) {
		home_done();
		keyctl_die("%s", err.msg);
	}
	home_done();
	if (!write_fully(fd, out.data, out.len))
		keyctl_die("writing the key: %s", strerror(errno));
	OPENSSL_cleanse(out.data, out.len);
	buf_release(&out);
	return true;
}

void
keyctl_pgp_show(struct ctx *c, const struct key_record *r)
{
	struct pgp_key_info info;
	struct cables_err err;
	char home[64], fpr[PGP_FPR_LEN + 1], created[32], until[32], seen1[32], seen2[32];

	printf("address:     %s\n", r->address);
	printf("format:      OpenPGP\n");
	printf("fingerprint: %s\n", r->fingerprint);
	temp_home(c, home);
	if (pgp_inspect(home, r->public_data, r->public_len, &info, &err) != CABLES_OK) {
		home_done();
		printf("usable:      no (%s)\n\n", err.msg);
		return;
	}
	printf("user IDs:   ");
	for (size_t i = 0; i < info.nemails; i++)
		printf(" <%s>", info.emails[i]);
	printf("\n");
	printf("key:         %s\n", info.algo);
	printf("can:         %s%s%s\n", info.can_encrypt ? "encrypt" : "",
	    info.can_encrypt && info.can_sign ? ", " : "", info.can_sign ? "sign" : "");
	format_day(info.created, created, sizeof(created));
	format_day(info.expires, until, sizeof(until));
	printf("created:     %s\n", created);
	printf("expires:     %s\n", info.expires != 0 ? until : "never");
	printf("source:      %s\n", r->source);
	format_day(r->first_seen, seen1, sizeof(seen1));
	format_day(r->last_seen, seen2, sizeof(seen2));
	printf("seen:        first %s, last %s\n", seen1, seen2);
	printf("private key: %s\n", r->secret_data != NULL ? "yes (sealed in the key store)" : "no");
	if (pgp_check(home, r->public_data, r->public_len, r->address, &c->cfg->addr, PGP_USE_ENCRYPT, c->now, fpr,
	    &err) == CABLES_OK)
		printf("usable:      yes\n\n");
	else
		printf("usable:      no (%s)\n\n", err.msg);
	pgp_key_info_release(&info);
	home_done();
}
