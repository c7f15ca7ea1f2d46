/*
 * fuzz_keydproto - the cables-keyd request parser (lib/keydproto.c): any
 * bytes as one request.  A parse must either fail with a reason or give
 * a lookup with 1..KEYD_ADDRESSES_MAX valid addresses, stats or list
 * without any, an import with one address, a format and base64 data, or a
 * delete with one address; and a sanitized value must hold no control
 * character.  The same bytes as a lookup reply: a parse must fail with a
 * reason or give results whose words are known and whose reasons hold no
 * newline, and formatting them again must parse to the same results.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz.h"
#include "keydproto.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* The bytes as a lookup reply: parsed, formatted again, parsed again to the same. */
static void
check_reply(const uint8_t *data, size_t size)
{
	struct keyd_lookup_reply r, again;
	struct cables_err err;
	struct buf out;

	if (keyd_lookup_reply_parse((const char *)data, size, &r, &err) != CABLES_OK) {
		if (err.msg[0] == '\0')
			abort();
		keyd_lookup_reply_release(&r);
		return;
	}
	buf_init(&out);
	for (size_t i = 0; i < r.n; i++) {
		if (strchr(r.results[i].reason, '\n') != NULL || strcmp(keyd_outcome_name(r.results[i].outcome), "?") == 0)
			abort();
		for (size_t k = 0; k < r.results[i].nkeys; k++)
			keyd_key_format(&out, &r.results[i].keys[k]);
		keyd_result_format(&out, r.results[i].address, r.results[i].outcome, r.results[i].reason);
	}
	buf_appends(&out, "");
	if (keyd_lookup_reply_parse(out.data, out.len, &again, &err) != CABLES_OK || again.n != r.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (again.results[i].outcome != r.results[i].outcome || again.results[i].nkeys != r.results[i].nkeys)
			abort();
	keyd_lookup_reply_release(&again);
	keyd_lookup_reply_release(&r);
	buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyd_request req;
	struct cables_err err;
	char *copy;

	if (keyd_request_parse((const char *)data, size, &req, &err) == CABLES_OK) {
		if (req.type == KEYD_LOOKUP && (req.naddresses == 0 || req.naddresses > KEYD_ADDRESSES_MAX))
			abort();
		if ((req.type == KEYD_STATS || req.type == KEYD_LIST) && req.naddresses != 0)
			abort();
		if (req.type == KEYD_IMPORT && (req.naddresses != 1 || req.format == NULL || req.data.len == 0 ||
		    strspn(req.data.data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != req.data.len))
			abort();
		if (req.type == KEYD_DELETE && (req.naddresses != 1 || req.format != NULL))
			abort();
		for (size_t i = 0; i < req.naddresses; i++)
			if (!addr_valid(req.addresses[i]))
				abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	keyd_request_release(&req);
	check_reply(data, size);
	copy = xstrndup((const char *)data, size);
	keyd_sanitize(copy);
	for (const char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			abort();
	free(copy);
	return 0;
}
