/*
 * fuzz_reinject - what a local user can send to the re-injection listener:
 * the input is a marker value (first line), header fields (up to an empty
 * line) and a body.  The marker is checked against them (it must not
 * verify: the key is secret), and a marker made for them must verify for
 * them, whatever their bytes (the header digest is a parser of hostile
 * header blocks); a SenderLogins file of the same bytes is read too.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "reinject.h"
#include "senderlogins.h"
#include "util.h"

#define NOW ((time_t)1790000000)

static const uint8_t key[REINJECT_KEY_LEN] = { 0x42 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static struct spool *
spool_of(const uint8_t *p, size_t n)
{
	struct spool *sp = spool_new(fuzz_tmpdir(), 4096, 0);

	if (sp == NULL || spool_append(sp, p, n, NULL) != CABLES_OK)
		abort();
	return sp;
}

static void
sender_logins(const uint8_t *data, size_t size)
{
	static const struct addr_opts opts = { false, "+" };
	char *path = xasprintf("%s/logins", fuzz_tmpdir());
	FILE *fp = fopen(path, "wb");
	struct sender_logins *map;
	struct cables_err err;
	char why[200];

	if (fp == NULL || fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	if (sender_logins_load(&map, path, &opts, &err) == CABLES_OK) {
		(void)sender_entitled(map, false, "alice@a.test", "mallory", why, sizeof(why));
		(void)sender_logins_allows(map, "bob@b.test", "bob");
		sender_logins_free(map);
	}
	free(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size), *end = data + size, *sep;
	const char *rcpts[] = { "carol@c.test", "Bob@B.test" };
	struct reinject_received r = { "alice@a.test", rcpts, 2, NULL, NULL };
	char *value, marker[200];

	sender_logins(data, size);
	if (nl == NULL)
		return 0;
	value = xstrndup((const char *)data, (size_t)(nl - data));
	sep = memmem(nl + 1, (size_t)(end - nl - 1), "\n\n", 2);
	if (sep == NULL)
		sep = end;
	r.headers = spool_of(nl + 1, (size_t)(sep - nl - 1));
	r.body = spool_of(sep, (size_t)(end - sep));
	if (reinject_marker_verify(key, value, NOW, REINJECT_WINDOW, &r, NULL))
		abort();	/* a marker nobody with the key made */
	if (reinject_marker_for(key, NOW, &r, marker, sizeof(marker), NULL) != CABLES_OK ||
	    !reinject_marker_verify(key, marker, NOW, REINJECT_WINDOW, &r, NULL))
		abort();	/* our own marker must verify for what it was made for */
	spool_free((struct spool *)r.headers);
	spool_free((struct spool *)r.body);
	free(value);
	return 0;
}
