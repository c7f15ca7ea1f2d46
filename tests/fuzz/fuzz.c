/* fuzz - shared by the libFuzzer targets; see fuzz.h. */
#include "autoconfig.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>

#include "fuzz.h"
#include "smime.h"
#include "util.h"

#ifndef FUZZ_KEYS_DIR
#define FUZZ_KEYS_DIR "tests/fuzz/keys"
#endif

void
fuzz_die(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

const char *
fuzz_key_path(const char *name)
{
	static char path[4096];
	const char *dir = getenv("CABLES_FUZZ_KEYS");

	snprintf(path, sizeof(path), "%s/test-only-%s.pem", dir != NULL ? dir : FUZZ_KEYS_DIR, name);
	return path;
}

void
fuzz_load_key(const char *name, X509 **cert, EVP_PKEY **key)
{
	STACK_OF(X509) *certs = NULL;
	struct cables_err err;
	const char *path = fuzz_key_path(name);

	*key = NULL;
	if (smime_load_file(path, NULL, &certs, key, &err) != CABLES_OK)
		fuzz_die("%s", err.msg);
	if (sk_X509_num(certs) < 1)
		fuzz_die("%s: no certificate", path);
	*cert = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
}

time_t
fuzz_now(X509 *const *certs, size_t n)
{
	long long not_before, not_after, newest = 0;

	for (size_t i = 0; i < n; i++) {
		smime_cert_validity(certs[i], &not_before, &not_after);
		if (not_before > newest)
			newest = not_before;
	}
	return (time_t)(newest + 86400);
}

static char *tmpdir;

static void
remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char *path;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = xasprintf("%s/%s", tmpdir, e->d_name);
		unlink(path);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

const char *
fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir != NULL)
		return tmpdir;
	tmpdir = xasprintf("%s/cables-fuzz.XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		fuzz_die("mkdtemp %s failed", tmpdir);
	atexit(remove_tmpdir);
	return tmpdir;
}

char *
fuzz_line(const uint8_t *data, size_t size, size_t *off)
{
	size_t start = *off < size ? *off : size, end = start;
	char *line;

	while (end < size && data[end] != '\n')
		end++;
	*off = end < size ? end + 1 : size;
	if (end > start && data[end - 1] == '\r')
		end--;
	line = xstrndup((const char *)data + start, end - start);	/* as a C string, it ends at a NUL */
	return line;
}

struct spool *
fuzz_spool(const void *p, size_t n)
{
	struct spool *sp = spool_new(fuzz_tmpdir(), n % 2 == 1 ? 256 : SPOOL_MEMORY_LIMIT, 0);

	if (spool_append(sp, p, n, NULL) != CABLES_OK)
		fuzz_die("spool_append failed");
	return sp;
}
