/*
 * fuzz_keydproto - the cables-keyd request parser (lib/keydproto.c): any
 * bytes as one request.  A parse must either fail with a reason or give
 * a lookup with 1..KEYD_ADDRESSES_MAX valid addresses, stats or list
 * without any, an import with one address, a format and base64 data, or a
 * delete with one address; and a sanitized value must hold no control
 * character.
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
	copy = xstrndup((const char *)data, size);
	keyd_sanitize(copy);
	for (const char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			abort();
	free(copy);
	return 0;
}
