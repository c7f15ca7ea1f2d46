/*
 * fuzz_pgp_packet - the OpenPGP packet header reader (pgp/pgp_packet.c):
 * any bytes as a binary message.  A header read must fit in the bytes
 * given and name a tag 1..63; a message called encrypted must have at
 * least one session-key packet; walking the packets by their headers
 * never leaves the input; keeping the session-key packets of one key ID
 * shrinks the message and leaves it encrypted; a PKESK body that parses
 * points within itself; the same bytes read as a transferable key
 * (pgp_key.c, which the keyholder and the milter use on store rows; its
 * key flags too) and as
 * a decrypted session key never read outside them.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgp_key.h"
#include "pgp_packet.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* Keep the PKESKs naming the first PKESK's key ID (or a fixed one). */
static void
keep(const uint8_t *data, size_t size)
{
	char ids[1][17] = { "0102030405060708" };
	struct cables_err err;
	uint8_t *copy = malloc(size + 1);
	size_t n = size, kept;
	cables_status st;

	if (size > 2 && data[1] < 192 && data[1] <= size - 2)
		(void)pgp_packet_pkesk_keyid(data + 2, data[1], ids[0]);
	memcpy(copy, data, size);
	st = pgp_packet_keep_pkesks(copy, &n, ids, 1, &kept, &err);
	if (st == CABLES_OK && (kept == 0 || n > size || pgp_packet_is_encrypted(copy, n, NULL, &err) != CABLES_OK))
		abort();
	if (st != CABLES_OK && kept != 0)
		abort();
	free(copy);
}

static void
pkesk(const uint8_t *body, size_t n)
{
	struct pgp_pkesk k;

	if (pgp_packet_pkesk_parse(body, n, &k, NULL) != CABLES_OK)
		return;
	if (k.mpi < body || k.mpi + k.mpi_len > body + n || k.mpi_len == 0 ||
	    (k.wrapped != NULL && (k.wrapped < body || k.wrapped + k.wrapped_len > body + n)))
		abort();
}

/* The bytes as a key (the first, and the key ID of the first 8 bytes or a fixed one), and as a session key. */
static void
as_key(const uint8_t *data, size_t size)
{
	struct pgp_keypkt k;
	char id[17] = "0102030405060708", sk[PGP_SESSION_KEY_STR];
	EVP_PKEY *key;
	unsigned int flags;
	bool revoked;

	if (size >= 8)
		for (size_t i = 0; i < 8; i++)
			snprintf(id + 2 * i, 3, "%02x", data[i]);
	for (int i = 0; i < 2; i++)
		if (pgp_key_find(data, size, i == 0 ? NULL : id, &k, NULL) == CABLES_OK && k.secret &&
		    (key = pgp_key_private(&k, NULL)) != NULL)
			EVP_PKEY_free(key);
	/* The key flags of the first key's ID (its self-signatures), or of the made-up one. */
	if (pgp_key_find(data, size, NULL, &k, NULL) == CABLES_OK)
		memcpy(id, k.keyid, sizeof(id));
	(void)pgp_key_usage(data, size, id, &flags, &revoked, NULL);
	if (flags > 0xff)
		abort();
	if (pgp_session_key_decode(data, size, size > 0 && (data[0] & 1), sk, NULL) == CABLES_OK &&
	    strlen(sk) < 4)
		abort();
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
		if (h.tag == PGP_TAG_PKESK)
			pkesk(data + pos + h.header_len, h.body_len);
		pos += h.header_len + h.body_len;
	}
	err.msg[0] = '\0';
	if (pgp_packet_is_encrypted(data, size, &nsk, &err) == CABLES_OK) {
		if (nsk == 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	keep(data, size);
	as_key(data, size);
	return 0;
}
