/*
 * fuzz_pgp - the OpenPGP parsing Cables does itself, before any gpg runs:
 * reading the key IDs of the session-key packets at the start of an
 * armored message (which decides whom an inbound message is for), and
 * telling OpenPGP data from other key files.
 *
 * Input: the bytes of a would-be armored message (any bytes).
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgp.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_tmpdir();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool *sp = fuzz_spool(data, size);
	char ids[16][17];
	size_t n = 0;

	if (pgp_message_keyids(sp, 0, (off_t)spool_size(sp), ids, 16, &n, NULL) == CABLES_OK)
		for (size_t i = 0; i < n; i++)
			if (strlen(ids[i]) != 16 || strspn(ids[i], "0123456789abcdef") != 16)
				abort();
	(void)pgp_data_is_openpgp(data, size);
	spool_free(sp);
	return 0;
}
