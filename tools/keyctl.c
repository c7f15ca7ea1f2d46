/*
 * cables-keyctl - key management for Cables.
 *
 * Exit status: 0 success, 1 a user or runtime error (one line on stderr),
 * 2 bad usage.  Private keys are printed only with --private and written
 * with mode 0600.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "config.h"
#include "keyctl.h"
#include "keystore.h"
#include "pgp.h"
#include "seal.h"
#include "smime.h"
#include "util.h"

#define EXIT_USER 1
#define EXIT_USAGE 2

static const char *progname = "cables-keyctl";

static const char usage_text[] =
    "usage: cables-keyctl [-o] [-c config-file] COMMAND [ARGS]\n"
    "       -o: write the key store directly, not through cables-keyd\n"
    "       cables-keyctl [-c config-file] -n     (check the configuration)\n"
    "commands:\n"
    "  generate ADDRESS --smime [--algo rsa3072|p256] [--days N]\n"
    "  generate ADDRESS --pgp [--algo ed25519|rsa3072] [--days N]\n"
    "  import FILE [--for ADDRESS] [--passphrase-file FILE] [--force]\n"
    "  export ADDRESS [--private] [--out FILE]\n"
    "  list\n"
    "  show ADDRESS\n"
    "  delete ADDRESS [--fingerprint PREFIX]\n"
    "  publish --dns [--epoch] [--domain DOMAIN]\n"
    "  publish --wkd DIR [--domain DOMAIN]   (a Web Key Directory of local OpenPGP keys)\n"
    "  lookup ADDRESS...                (through cables-keyd)\n"
    "  exchange-key generate|show [--domain DOMAIN]\n"
    "  pins [list] | pins clear ADDRESS  (keys first seen: DNS, key servers, harvested)\n"
    "  encrypting [list] | encrypting forget DOMAIN  (domains remembered as encrypting)\n"
    "  stats                            (cables-keyd's and cables-milter's counters)\n"
    "  migrate --from FILE [--force]    (copy a SQLite key store into KeyStore postgresql://...)\n"
    "  held [list] | held show|release|return|delete ID  (messages waiting for keys: On-KeyNotFound hold)\n"
    "  policy show ADDRESS\n"
    "  policy set TARGET [require|encrypt|never] [Attribute=value ...]\n"
    "  policy unset TARGET [Attribute ...]\n";

void
keyctl_usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		fprintf(stderr, "%s: ", progname);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

void
keyctl_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_USER);
}

void
open_store(struct ctx *c, bool create)
{
	struct cables_err err;

	if (keystore_open(&c->ks, c->cfg->key_store, create, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
}

char *
normalized(const struct ctx *c, const char *addr)
{
	char *norm;

	if (!addr_valid(addr))
		keyctl_die("'%s' is not an email address", addr);
	norm = addr_normalize(addr, &c->cfg->addr);
	if (norm == NULL)
		keyctl_die("'%s' is not an email address", addr);
	return norm;
}

/* Store cert for addr, with its private key sealed when key is not NULL. */
static void
store_cert(struct ctx *c, const char *addr, X509 *cert, EVP_PKEY *key, const char *source)
{
	struct key_record r;
	struct cables_err err;
	uint8_t seal_key[SEAL_KEY_LEN], *der = NULL;
	size_t der_len = 0;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(cert, r.fingerprint);
	r.public_data = smime_cert_to_der(cert, &r.public_len);
	if (r.public_data == NULL)
		keyctl_die("cannot encode the certificate for %s", addr);
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.source = (char *)source;
	if (key != NULL) {
		if (seal_key_load(c->cfg->key_store_key, true, seal_key, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		if (smime_key_to_der(key, &der, &der_len, &err) != CABLES_OK ||
		    seal_close(seal_key, r.fingerprint, der, der_len, &r.secret_data, &r.secret_len,
		    &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		OPENSSL_cleanse(seal_key, sizeof(seal_key));
		seal_free_secret(der, der_len);
	}
	keyctl_put(c, &r);
	free(r.public_data);
	free(r.secret_data);
}

static int
cmd_generate(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "smime", no_argument, NULL, 's' }, { "pgp", no_argument, NULL, 'p' },
		{ "algo", required_argument, NULL, 'a' }, { "days", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 } };
	enum smime_algo algo = SMIME_ALGO_RSA3072;
	enum pgp_algo palgo;
	bool smime = false, pgp = false;
	unsigned long days = 730;
	const char *algo_name = NULL;
	char *end, *addr, fpr[65], desc[64], until[32];
	struct cables_err err;
	X509 *cert;
	EVP_PKEY *key;
	long long nb, na;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': smime = true; break;
		case 'p': pgp = true; break;
		case 'a': algo_name = optarg; break;
		case 'd':
			days = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || days == 0 || days > 36500)
				keyctl_usage("--days: '%s' is not a number of days (1-36500)", optarg);
			break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind + 1 != argc)
		keyctl_usage("generate needs exactly one ADDRESS");
	if (smime == pgp)
		keyctl_usage("generate needs one format: --smime or --pgp");
	if (smime && algo_name != NULL && !smime_algo_parse(algo_name, &algo))
		keyctl_usage("--algo: '%s' is not rsa3072 or p256 (with --smime)", algo_name);
	if (pgp && algo_name != NULL && !pgp_algo_parse(algo_name, &palgo))
		keyctl_usage("--algo: '%s' is not ed25519 or rsa3072 (with --pgp)", algo_name);
	addr = normalized(c, argv[optind]);
	open_store(c, true);
	if (pgp) {
		keyctl_pgp_generate(c, addr, algo_name, days);
		free(addr);
		return 0;
	}
	if (smime_generate(addr, algo, (unsigned int)days, c->now, &cert, &key, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	store_cert(c, addr, cert, key, "generated");
	smime_cert_fingerprint(cert, fpr);
	smime_key_description(key, desc, sizeof(desc));
	smime_cert_validity(cert, &nb, &na);
	format_day(na, until, sizeof(until));
	printf("generated S/MIME key for %s: %s, fingerprint %s, valid until %s\n", addr, desc, fpr, until);
	X509_free(cert);
	EVP_PKEY_free(key);
	free(addr);
	return 0;
}

/* The whole file, for OpenPGP detection and import; NULL with errno set on failure. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	struct buf b;
	char chunk[8192];
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (fp == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (b.len + n > 16u << 20) {
			fclose(fp);
			buf_release(&b);
			errno = EFBIG;
			return NULL;
		}
		buf_append(&b, chunk, n);
	}
	fclose(fp);
	*len = b.len;
	if (b.data == NULL)
		return (uint8_t *)xstrdup("");
	return (uint8_t *)b.data;
}

static char *
read_passphrase(const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[1024];

	if (fp == NULL)
		keyctl_die("--passphrase-file %s: %s", path, strerror(errno));
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	return xstrdup(line);
}

static char *
cert_subject(X509 *cert)
{
	char buf[256];

	X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
	return xstrdup(buf);
}

/*
 * Import one certificate for each address it names (or only for want).
 * A certificate that cannot be used now is refused unless force is set.
 */
static int
import_cert(struct ctx *c, X509 *cert, EVP_PKEY *key, const char *want, bool force)
{
	char **emails, *subject = cert_subject(cert), fpr[65];
	size_t n = smime_cert_emails(cert, &emails);
	struct cables_err err;
	int imported = 0;
	bool usable;

	smime_cert_fingerprint(cert, fpr);
	if (n == 0)
		fprintf(stderr, "%s: skipped %s: names no email address\n", progname, subject);
	for (size_t i = 0; i < n; i++) {
		char *norm = addr_valid(emails[i]) ? addr_normalize(emails[i], &c->cfg->addr) : NULL;

		if (norm == NULL || (want != NULL && strcmp(norm, want) != 0)) {
			free(norm);
			continue;
		}
		usable = smime_cert_check(cert, norm, &c->cfg->addr, c->now, &err) == CABLES_OK;
		if (!usable && !force) {
			fprintf(stderr, "%s: refused %s for %s: %s (--force imports it anyway)\n",
			    progname, subject, norm, err.msg);
		} else {
			if (!usable)
				fprintf(stderr, "%s: warning: %s for %s is not usable now: %s\n",
				    progname, subject, norm, err.msg);
			store_cert(c, norm, cert, key, "imported");
			printf("imported S/MIME certificate for %s: fingerprint %s%s\n", norm, fpr,
			    key != NULL ? ", with private key" : "");
			imported++;
		}
		free(norm);
	}
	smime_free_emails(emails, n);
	free(subject);
	return imported;
}

static int
cmd_import(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "for", required_argument, NULL, 'f' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 } };
	char *want = NULL, *pass = NULL;
	bool force = false;
	STACK_OF(X509) *certs;
	EVP_PKEY *key;
	struct cables_err err;
	int ch, imported = 0;
	bool key_used = false;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f': free(want); want = normalized(c, optarg); break;
		case 'p': free(pass); pass = read_passphrase(optarg); break;
		case 'F': force = c->force = true; break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind + 1 != argc)
		keyctl_usage("import needs exactly one FILE");
	{
		size_t len = 0;
		uint8_t *data = slurp(argv[optind], &len);

		if (data == NULL)
			keyctl_die("%s: %s", argv[optind], strerror(errno));
		if (pgp_data_is_openpgp(data, len)) {
			open_store(c, true);
			imported = keyctl_pgp_import(c, argv[optind], data, len, want, force);
			OPENSSL_cleanse(data, len);
			free(data);
			if (imported == 0)
				keyctl_die("%s: nothing imported%s%s", argv[optind], want != NULL ? " for " : "",
				    want != NULL ? want : "");
			free(want);
			free(pass);
			return 0;
		}
		OPENSSL_cleanse(data, len);
		free(data);
	}
	if (smime_load_file(argv[optind], pass, &certs, &key, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (pass != NULL) {
		OPENSSL_cleanse(pass, strlen(pass));
		free(pass);
	}
	if (certs == NULL || sk_X509_num(certs) == 0)
		keyctl_die("%s: a private key alone cannot be imported; include its certificate", argv[optind]);
	open_store(c, true);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);
		bool mine = key != NULL && smime_key_matches(cert, key);
		int n = import_cert(c, cert, mine ? key : NULL, want, force);

		imported += n;
		key_used |= mine && n > 0;
	}
	sk_X509_pop_free(certs, X509_free);
	if (key != NULL && !key_used && imported > 0)
		fprintf(stderr, "%s: the private key in %s matches no imported certificate; not stored\n",
		    progname, argv[optind]);
	EVP_PKEY_free(key);
	if (imported == 0)
		keyctl_die("%s: nothing imported%s%s", argv[optind], want != NULL ? " for " : "", want != NULL ? want : "");
	free(want);
	return 0;
}

static EVP_PKEY *
open_private(struct ctx *c, const struct key_record *r)
{
	uint8_t seal_key[SEAL_KEY_LEN], *der;
	size_t der_len;
	struct cables_err err;
	EVP_PKEY *key;

	if (seal_key_load(c->cfg->key_store_key, false, seal_key, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (seal_open(seal_key, r->fingerprint, r->secret_data, r->secret_len, &der, &der_len, &err) != CABLES_OK)
		keyctl_die("private key of %s: %s", r->address, err.msg);
	OPENSSL_cleanse(seal_key, sizeof(seal_key));
	key = smime_key_from_der(der, der_len);
	seal_free_secret(der, der_len);
	if (key == NULL)
		keyctl_die("private key of %s cannot be decoded", r->address);
	return key;
}

static int
cmd_export(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "private", no_argument, NULL, 'p' }, { "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 } };
	bool private = false;
	const char *out_path = NULL;
	struct key_list keys;
	struct cables_err err;
	char *addr;
	BIO *out;
	int ch, written = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': private = true; break;
		case 'o': out_path = optarg; break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind + 1 != argc)
		keyctl_usage("export needs exactly one ADDRESS");
	addr = normalized(c, argv[optind]);
	open_store(c, false);
	if (keystore_lookup(c->ks, addr, NULL, &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (keys.count == 0)
		keyctl_die("no key for %s", addr);
	if (out_path != NULL) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || fchmod(fd, 0600) != 0)
			keyctl_die("%s: %s", out_path, strerror(errno));
		out = BIO_new_fd(fd, BIO_CLOSE);
	} else {
		out = BIO_new_fp(stdout, BIO_NOCLOSE);
	}
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		X509 *cert;

		if (strcmp(r->format, "pgp") == 0) {
			(void)BIO_flush(out);
			if (keyctl_pgp_export(c, r, private, out_path != NULL ? (int)BIO_get_fd(out, NULL) : STDOUT_FILENO))
				written++;
			continue;
		}
		cert = smime_cert_from_der(r->public_data, r->public_len);
		if (cert == NULL)
			keyctl_die("stored certificate %s of %s cannot be decoded", r->fingerprint, addr);
		if (private && r->secret_data == NULL) {
			X509_free(cert);
			continue;
		}
		PEM_write_bio_X509(out, cert);
		if (private) {
			EVP_PKEY *key = open_private(c, r);

			PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL);
			EVP_PKEY_free(key);
		}
		X509_free(cert);
		written++;
	}
	BIO_free(out);
	key_list_release(&keys);
	if (written == 0)
		keyctl_die("no private key for %s", addr);
	free(addr);
	return 0;
}

/* A time to the minute, UTC, for keys that live days. */
static void
format_minute(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%MZ", &tm);
}

/*
 * The epoch keys cables-keyholder keeps (doc/key-exchange.md, "Forward
 * secrecy"), read from the store itself: keyd's list leaves them out, as
 * they are no long-term keys.  A store this user cannot read is said so.
 */
static void
list_epoch_keys(struct ctx *c)
{
	struct keystore *ks = c->ks;
	struct key_list keys;
	struct cables_err err;
	char until[32], gone[32];

	if (ks == NULL && keystore_open(&ks, c->cfg->key_store, false, &err) != CABLES_OK) {
		fprintf(stderr, "cables-keyctl: epoch keys not listed: %s\n", err.msg);
		return;
	}
	if (keystore_epoch_list(ks, NULL, false, &keys, &err) != CABLES_OK)
		fprintf(stderr, "cables-keyctl: epoch keys not listed: %s\n", err.msg);
	else if (keys.count > 0) {
		/* Lines start with "epoch", not the address: scripts that read the table above by address stay right. */
		printf("\n%-6s %-32s %-6s %-16s %-17s %-17s %-10s %s\n", "EPOCH", "ADDRESS", "FORMAT", "FINGERPRINT",
		    "EXPIRES", "DELETED AFTER", "SOURCE", "PRIVATE");
		for (size_t i = 0; i < keys.count; i++) {
			const struct key_record *r = &keys.items[i];

			format_minute(r->not_after, until, sizeof(until));
			format_minute(r->not_after + (long long)(c->cfg->epoch_key_grace_ms / 1000), gone,
			    sizeof(gone));
			printf("%-6s %-32s %-6s %-16.16s %-17s %-17s %-10s %s\n", "epoch", r->address, r->format,
			    r->fingerprint, until, gone, r->source, r->secret_len > 0 ? "yes" : "no");
		}
	}
	key_list_release(&keys);
	if (ks != c->ks)
		keystore_close(ks);
}

static int
cmd_list(struct ctx *c, int argc, char **argv)
{
	struct key_list keys;
	struct cables_err err;
	char until[32];

	if (argc != 1)
		keyctl_usage("list takes no arguments");
	if (!keyctl_via_keyd(c) || !keyctl_keyd_list(c, &keys)) {
		open_store(c, false);
		if (keystore_list(c->ks, false, &keys, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
	}
	printf("%-32s %-6s %-16s %-10s %-10s %s\n", "ADDRESS", "FORMAT", "FINGERPRINT", "EXPIRES", "SOURCE", "PRIVATE");
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];

		format_day(r->not_after, until, sizeof(until));
		printf("%-32s %-6s %-16.16s %-10s %-10s %s\n", r->address, r->format, r->fingerprint,
		    until, r->source, r->secret_len > 0 ? "yes" : "no");
	}
	key_list_release(&keys);
	list_epoch_keys(c);
	return 0;
}

static void
show_key(struct ctx *c, const struct key_record *r)
{
	X509 *cert = smime_cert_from_der(r->public_data, r->public_len);
	char buf[256], desc[64], from[32], until[32], seen1[32], seen2[32], **emails;
	struct cables_err err;
	ASN1_INTEGER *serial;
	BIGNUM *bn;
	char *hex;
	size_t n;

	printf("address:     %s\n", r->address);
	printf("format:      S/MIME (X.509)\n");
	printf("fingerprint: %s (SHA-256)\n", r->fingerprint);
	if (cert == NULL) {
		printf("usable:      no (stored certificate cannot be decoded)\n\n");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
	printf("subject:     %s\n", buf);
	X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof(buf));
	printf("issuer:      %s\n", buf);
	serial = X509_get_serialNumber(cert);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	printf("serial:      %s\n", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	n = smime_cert_emails(cert, &emails);
	printf("emails:     ");
	for (size_t i = 0; i < n; i++)
		printf(" %s", emails[i]);
	printf("\n");
	smime_free_emails(emails, n);
	smime_key_description(X509_get0_pubkey(cert), desc, sizeof(desc));
	printf("key:         %s\n", desc);
	format_day(r->not_before, from, sizeof(from));
	format_day(r->not_after, until, sizeof(until));
	printf("valid:       %s to %s\n", from, until);
	printf("source:      %s\n", r->source);
	format_day(r->first_seen, seen1, sizeof(seen1));
	format_day(r->last_seen, seen2, sizeof(seen2));
	printf("seen:        first %s, last %s\n", seen1, seen2);
	printf("private key: %s\n", r->secret_data != NULL ? "yes (sealed in the key store)" : "no");
	if (smime_cert_check(cert, r->address, &c->cfg->addr, c->now, &err) == CABLES_OK)
		printf("usable:      yes\n\n");
	else
		printf("usable:      no (%s)\n\n", err.msg);
	X509_free(cert);
}

static int
cmd_show(struct ctx *c, int argc, char **argv)
{
	struct key_list keys;
	struct cables_err err;
	char *addr;

	if (argc != 2)
		keyctl_usage("show needs exactly one ADDRESS");
	addr = normalized(c, argv[1]);
	open_store(c, false);
	if (keystore_lookup(c->ks, addr, NULL, &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (keys.count == 0)
		keyctl_die("no key for %s", addr);
	for (size_t i = 0; i < keys.count; i++) {
		if (strcmp(keys.items[i].format, "pgp") == 0)
			keyctl_pgp_show(c, &keys.items[i]);
		else
			show_key(c, &keys.items[i]);
	}
	key_list_release(&keys);
	free(addr);
	return 0;
}

static int
cmd_delete(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fingerprint", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
	const char *fpr = NULL;
	struct cables_err err;
	size_t deleted;
	char *addr;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			fpr = optarg;
			if (strlen(fpr) < 8 || strspn(fpr, "0123456789abcdefABCDEF") != strlen(fpr))
				keyctl_usage("--fingerprint: '%s' is not a hex prefix of at least 8 digits", fpr);
			break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind + 1 != argc)
		keyctl_usage("delete needs exactly one ADDRESS");
	addr = normalized(c, argv[optind]);
	if (!keyctl_via_keyd(c) || !keyctl_keyd_delete(c, addr, fpr, &deleted)) {
		open_store(c, false);
		if (keystore_delete(c->ks, addr, fpr, &deleted, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
	}
	printf("deleted %zu key%s for %s\n", deleted, deleted == 1 ? "" : "s", addr);
	free(addr);
	return 0;
}

static int
cmd_policy(struct ctx *c, int argc, char **argv)
{
	return keyctl_policy(c->cfg, argc, argv);
}

static const struct command {
	const char *name;
	int (*run)(struct ctx *, int, char **);
} commands[] = {
	{ "generate", cmd_generate },
	{ "import", cmd_import },
	{ "export", cmd_export },
	{ "list", cmd_list },
	{ "show", cmd_show },
	{ "delete", cmd_delete },
	{ "policy", cmd_policy },
	{ "publish", keyctl_publish },
	{ "lookup", keyctl_lookup },
	{ "exchange-key", keyctl_exchange_key },
	{ "pins", keyctl_pins },
	{ "encrypting", keyctl_encrypting },
	{ "stats", keyctl_stats },
	{ "migrate", keyctl_migrate },
	{ "held", keyctl_held },
};

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct cables_err err;
	struct ctx c;
	bool check_only = false;
	int ch, rc;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt(argc, argv, "+c:hno")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'o': c.offline = true; break;
		case 'n': check_only = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: keyctl_usage(NULL);
		}
	}
	if (check_only) {
		if (optind != argc)
			keyctl_usage("-n takes no command");
		c.cfg = config_load(config_path != NULL ? config_path : CABLES_DEFAULT_CONFIG, true, &err);
		if (c.cfg == NULL)
			keyctl_die("%s", err.msg);
		printf("%s: %s: configuration OK\n", progname, c.cfg->path);
		config_free(c.cfg);
		return 0;
	}
	if (optind >= argc)
		keyctl_usage("no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		/* An explicit -c must exist; the default may be absent (defaults apply). */
		c.cfg = config_load(config_path != NULL ? config_path : CABLES_DEFAULT_CONFIG,
		    config_path != NULL, &err);
		if (c.cfg == NULL)
			keyctl_die("%s", err.msg);
		c.now = time(NULL);
		argv += optind;
		argc -= optind;
		optind = 0;	/* glibc: 0 fully resets getopt for the command's options */
		rc = commands[i].run(&c, argc, argv);
		keystore_close(c.ks);
		config_free(c.cfg);
		return rc;
	}
	keyctl_usage("unknown command '%s'", argv[optind]);
}
