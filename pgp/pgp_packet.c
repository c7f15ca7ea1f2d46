/* pgp_packet - OpenPGP packet headers; see pgp_packet.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "pgp_packet.h"
#include "util.h"

/* More session-key packets than this is not a message anyone sends. */
#define SESSION_KEYS_MAX 1000

static cables_status
read_new_length(const uint8_t *p, size_t n, struct pgp_packet_header *h, struct cables_err *err)
{
	uint8_t b;

	if (n < 2)
		return cables_fail(err, CABLES_ERR_SYNTAX, "packet header cut short");
	b = p[1];
	if (b < 192) {
		h->body_len = b;
		h->header_len = 2;
	} else if (b < 224) {
		if (n < 3)
			return cables_fail(err, CABLES_ERR_SYNTAX, "packet header cut short");
		h->body_len = ((uint32_t)(b - 192) << 8) + p[2] + 192;
		h->header_len = 3;
	} else if (b == 255) {
		if (n < 6)
			return cables_fail(err, CABLES_ERR_SYNTAX, "packet header cut short");
		h->body_len = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
		h->header_len = 6;
	} else {
		h->kind = PGP_LENGTH_PARTIAL;
		h->body_len = (uint32_t)1 << (b & 0x1f);
		h->header_len = 2;
	}
	return CABLES_OK;
}

static cables_status
read_old_length(const uint8_t *p, size_t n, struct pgp_packet_header *h, struct cables_err *err)
{
	static const size_t octets[] = { 1, 2, 4, 0 };
	size_t k = octets[p[0] & 3];

	if ((p[0] & 3) == 3) {
		h->kind = PGP_LENGTH_INDETERMINATE;
		h->header_len = 1;
		return CABLES_OK;
	}
	if (n < 1 + k)
		return cables_fail(err, CABLES_ERR_SYNTAX, "packet header cut short");
	h->body_len = 0;
	for (size_t i = 0; i < k; i++)
		h->body_len = h->body_len << 8 | p[1 + i];
	h->header_len = 1 + k;
	return CABLES_OK;
}

cables_status
pgp_packet_header_read(const uint8_t *p, size_t n, struct pgp_packet_header *h, struct cables_err *err)
{
	h->tag = 0;
	h->new_format = false;
	h->header_len = 0;
	h->kind = PGP_LENGTH_DEFINITE;
	h->body_len = 0;
	if (n < 1)
		return cables_fail(err, CABLES_ERR_SYNTAX, "no packet header");
	if ((p[0] & 0x80) == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "not a packet header (byte 0x%02x)", p[0]);
	h->new_format = (p[0] & 0x40) != 0;
	h->tag = h->new_format ? p[0] & 0x3fu : (p[0] >> 2) & 0x0fu;
	if (h->tag == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "packet tag 0 (reserved)");
	return h->new_format ? read_new_length(p, n, h, err) : read_old_length(p, n, h, err);
}

/* Skip the body of the packet at *pos whose header is h; partial chunks too (only data packets may have them). */
static cables_status
skip_packet(const uint8_t *p, size_t n, size_t *pos, const struct pgp_packet_header *h, struct cables_err *err)
{
	if (h->kind != PGP_LENGTH_DEFINITE)
		return cables_fail(err, CABLES_ERR_SYNTAX, "session-key packet (tag %u) without a definite length",
		    h->tag);
	if (h->body_len > n - *pos - h->header_len)
		return cables_fail(err, CABLES_ERR_SYNTAX, "session-key packet (tag %u) of %u bytes cut short",
		    h->tag, (unsigned int)h->body_len);
	*pos += h->header_len + h->body_len;
	return CABLES_OK;
}

static bool
is_data_packet(unsigned int tag)
{
	return tag == PGP_TAG_SED || tag == PGP_TAG_SEIPD || tag == PGP_TAG_AEAD;
}

cables_status
pgp_packet_is_encrypted(const uint8_t *p, size_t n, size_t *nsk, struct cables_err *err)
{
	struct pgp_packet_header h;
	size_t pos = 0, sessions = 0;
	cables_status st;

	if (nsk != NULL)
		*nsk = 0;
	for (;;) {
		if (pos >= n)
			return cables_fail(err, CABLES_ERR_SYNTAX, "no encrypted data packet after %zu session-key "
			    "packet%s", sessions, sessions == 1 ? "" : "s");
		if ((st = pgp_packet_header_read(p + pos, n - pos, &h, err)) != CABLES_OK)
			return st;
		if (is_data_packet(h.tag))
			break;
		if (h.tag != PGP_TAG_PKESK && h.tag != PGP_TAG_SKESK && h.tag != PGP_TAG_MARKER)
			return cables_fail(err, CABLES_ERR_SYNTAX, "packet tag %u where a session-key or encrypted "
			    "data packet belongs", h.tag);
		if (h.tag != PGP_TAG_MARKER && ++sessions > SESSION_KEYS_MAX)
			return cables_fail(err, CABLES_ERR_SYNTAX, "more than %d session-key packets", SESSION_KEYS_MAX);
		if ((st = skip_packet(p, n, &pos, &h, err)) != CABLES_OK)
			return st;
	}
	if (sessions == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "encrypted data packet (tag %u) without a session-key packet",
		    h.tag);
	/* RFC 4880 4.2.2.4: the first partial chunk of a packet is at least 512 bytes. */
	if (h.kind == PGP_LENGTH_PARTIAL && h.body_len < 512)
		return cables_fail(err, CABLES_ERR_SYNTAX, "first partial chunk of %u bytes (fewer than 512)",
		    (unsigned int)h.body_len);
	if (h.kind == PGP_LENGTH_DEFINITE && h.body_len == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "empty encrypted data packet");
	if (nsk != NULL)
		*nsk = sessions;
	return CABLES_OK;
}

bool
pgp_packet_pkesk_keyid(const uint8_t *body, size_t n, char id[17])
{
	if (n < 9 || body[0] != 3)
		return false;
	hex_encode(body + 1, 8, id);
	id[16] = '\0';
	return true;
}

/* Does the PKESK body name one of ids?  Never a wildcard (hidden recipient) ID. */
static bool
pkesk_names(const uint8_t *body, size_t n, const char (*ids)[17], size_t nids)
{
	char id[17];

	if (!pgp_packet_pkesk_keyid(body, n, id) || strcmp(id, "0000000000000000") == 0)
		return false;
	for (size_t i = 0; i < nids; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

cables_status
pgp_packet_keep_pkesks(uint8_t *p, size_t *n, const char (*ids)[17], size_t nids, size_t *kept,
    struct cables_err *err)
{
	struct pgp_packet_header h;
	size_t pos = 0, out = 0, len;
	cables_status st;

	*kept = 0;
	/* Whole definite session-key packets, then a data packet's header, all within *n. */
	if ((st = pgp_packet_is_encrypted(p, *n, NULL, err)) != CABLES_OK)
		return st;
	while (pgp_packet_header_read(p + pos, *n - pos, &h, NULL) == CABLES_OK && !is_data_packet(h.tag)) {
		len = h.header_len + h.body_len;
		if (h.tag == PGP_TAG_PKESK && pkesk_names(p + pos + h.header_len, h.body_len, ids, nids)) {
			memmove(p + out, p + pos, len);
			out += len;
			(*kept)++;
		}
		pos += len;
	}
	if (*kept == 0)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "no public-key encrypted session key for the "
		    "recipient's keys");
	memmove(p + out, p + pos, *n - pos);
	*n -= pos - out;
	return CABLES_OK;
}

/* An MPI at body[*pos]: its value bytes. */
static bool
mpi_at(const uint8_t *body, size_t n, size_t *pos, const uint8_t **v, size_t *len)
{
	size_t bits;

	if (n - *pos < 2)
		return false;
	bits = (size_t)body[*pos] << 8 | body[*pos + 1];
	*len = (bits + 7) / 8;
	if (*len == 0 || *len > n - *pos - 2)
		return false;
	*v = body + *pos + 2;
	*pos += 2 + *len;
	return true;
}

cables_status
pgp_packet_pkesk_parse(const uint8_t *body, size_t n, struct pgp_pkesk *k, struct cables_err *err)
{
	size_t pos = 10;

	memset(k, 0, sizeof(*k));
	if (!pgp_packet_pkesk_keyid(body, n, k->keyid) || n < 10)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: not a version 3 public-key session-key packet");
	k->algo = body[9];
	if (k->algo != 1 && k->algo != 2 && k->algo != 18)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP: session key encrypted with public-key "
		    "algorithm %u (RSA and ECDH are decrypted here)", k->algo);
	if (!mpi_at(body, n, &pos, &k->mpi, &k->mpi_len))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: session-key packet cut short");
	if (k->algo == 18) {
		if (pos >= n || body[pos] == 0 || body[pos] > n - pos - 1)
			return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: ECDH session-key packet cut short");
		k->wrapped_len = body[pos];
		k->wrapped = body + pos + 1;
		pos += 1 + k->wrapped_len;
	}
	if (pos != n)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP: %zu bytes after the session-key packet's fields",
		    n - pos);
	return CABLES_OK;
}

cables_status
pgp_packet_find_pkesk(const uint8_t *p, size_t n, const char id[17], const uint8_t **body, size_t *len,
    struct cables_err *err)
{
	struct pgp_packet_header h;
	size_t pos = 0;
	cables_status st;

	*body = NULL;
	*len = 0;
	if ((st = pgp_packet_is_encrypted(p, n, NULL, err)) != CABLES_OK)
		return st;
	while (pgp_packet_header_read(p + pos, n - pos, &h, NULL) == CABLES_OK && !is_data_packet(h.tag)) {
		if (h.tag == PGP_TAG_PKESK && pkesk_names(p + pos + h.header_len, h.body_len, (const char (*)[17])id, 1)) {
			*body = p + pos + h.header_len;
			*len = h.body_len;
			return CABLES_OK;
		}
		pos += h.header_len + h.body_len;
	}
	return cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP: no session-key packet for key %s", id);
}
