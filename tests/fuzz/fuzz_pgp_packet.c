/*
 * fuzz_pgp_packet - the OpenPGP packet header reader (pgp/pgp_packet.c):
 * any bytes as a binary message.  A header read must fit in the bytes
 * given and name a tag 1..63; a message called encrypted must have at
 * least one session-key packet; walking the packets by their headers
 * never leaves the input.
 */
#include "autoconfig.h"

#include <stdlib.h>

#include "fuzz.h"
#include "pgp_packet.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgp_packet_header h;
	struct cables_err err;
	size_t pos = 0, nsk;
	char id[17];

	while (pos < size && pgp_packet_header_read(data + pos, size - pos, &h, &err) == CABLES_OK) {
		if (h.header_len == 0 || h.header_len > size - pos || h.tag == 0 || h.tag > 63)
			abort();
		if (h.kind != PGP_LENGTH_DEFINITE || h.body_len > size - pos - h.header_len)
			break;
		(void)pgp_packet_pkesk_keyid(data + pos + h.header_len, h.body_len, id);
		pos += h.header_len + h.body_len;
	}
	err.msg[0] = '\0';
	if (pgp_packet_is_encrypted(data, size, &nsk, &err) == CABLES_OK) {
		if (nsk == 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	return 0;
}
