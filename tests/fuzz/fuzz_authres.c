/*
 * fuzz_authres - the Authentication-Results reader (lib/authres.c): any
 * bytes as a received field value.  A read must either fail with a reason
 * or give a non-empty id that fits; a value read as ours must be claimed;
 * and quoting the input must give one quoted-string that reads back as
 * an authserv-id equal to the input with control characters replaced.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "fuzz.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static void
quote_round_trip(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size), id[AUTHRES_ID_MAX * 2 + 8];
	struct cables_err err;
	struct buf q;

	buf_init(&q);
	authres_quote(&q, in);
	if (memchr(q.data, '\r', q.len) != NULL || memchr(q.data, '\n', q.len) != NULL)
		abort();
	buf_appends(&q, "; smime=pass");
	if (strlen(in) < AUTHRES_ID_MAX && strlen(in) > 0) {
		if (authres_servid(q.data, q.len, id, sizeof(id), &err) != CABLES_OK || strlen(id) != strlen(in))
			abort();
		for (size_t i = 0; in[i] != '\0'; i++)
			if (id[i] != ((unsigned char)in[i] < ' ' || in[i] == 127 ? '?' : in[i]))
				abort();
	}
	buf_release(&q);
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[AUTHRES_ID_MAX];
	struct cables_err err;
	cables_status st;

	err.msg[0] = '\0';
	st = authres_servid((const char *)data, size, id, sizeof(id), &err);
	if (st == CABLES_OK) {
		if (id[0] == '\0' || strlen(id) >= sizeof(id))
			abort();
		if (!authres_claims((const char *)data, size, id))
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	(void)authres_claims((const char *)data, size, "mx.b.test");
	quote_round_trip(data, size);
	return 0;
}
