/*
 * fuzz_domainpolicy - the _cables-policy TXT record (lib/domainpolicy.c)
 * as hostile DNS serves it: any bytes as the presentation form of the
 * record.  It must never read out of bounds, and a record it takes must
 * say v=cables1 and p=require, as its text (unescaped) does.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "domainpolicy.h"
#include "fuzz.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: the parser must keep within len, NUL or not. */
	char *rdata = xmalloc(size + 1);
	enum domainpolicy p;

	memcpy(rdata, data, size);
	if (domainpolicy_parse(rdata, size, &p, NULL) == CABLES_OK) {
		/* Taken: the bytes hold the version and the policy, quoted. */
		if (p != DOMAINPOLICY_REQUIRE || size < 20 || memchr(rdata, '"', size) == NULL)
			abort();
	}
	free(rdata);
	return 0;
}
