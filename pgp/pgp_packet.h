/*
 * pgp_packet - OpenPGP packet headers (RFC 4880 / RFC 9580 section 4.2):
 * the tag and body length of old- and new-format headers, partial body
 * lengths included; and, from them, whether a binary OpenPGP message is
 * encrypted.
 *
 * An encrypted message, here, starts with one or more session-key packets
 * (PKESK, tag 1; SKESK, tag 3; marker packets, tag 10, may come between,
 * RFC 4880 section 5.8) followed by an encrypted data packet (SED, tag 9;
 * SEIPD, tag 18; AEAD, tag 20, RFC 9580 / LibrePGP).  Anything else, a
 * literal data packet dressed as PGP/MIME for instance, is not.
 *
 * No allocation and no read past the bytes given; a header or a packet
 * sequence cut short by the end of the bytes given is a syntax error
 * (callers give the decoded prefix of a message, PGP_PACKET_PREFIX_MAX
 * bytes at most, which holds the session-key packets of hundreds of
 * recipients).
 */
#ifndef CABLES_PGP_PACKET_H
#define CABLES_PGP_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define PGP_PACKET_PREFIX_MAX (256 * 1024)

/* Big-endian 32-bit fields (times, lengths) in packets. */
static inline void
pgp_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t
pgp_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum pgp_length_kind {
	PGP_LENGTH_DEFINITE,		/* body_len is the whole body */
	PGP_LENGTH_PARTIAL,		/* body_len is the first chunk; more length headers follow */
	PGP_LENGTH_INDETERMINATE,	/* old format, length type 3: to the end of the data */
};

struct pgp_packet_header {
	unsigned int tag;		/* 0..63 (old format: 0..15) */
	bool new_format;
	size_t header_len;		/* bytes of the header before the body */
	enum pgp_length_kind kind;
	uint32_t body_len;
};

enum pgp_packet_tag {
	PGP_TAG_PKESK = 1, PGP_TAG_SKESK = 3, PGP_TAG_SED = 9, PGP_TAG_MARKER = 10, PGP_TAG_LITERAL = 11,
	PGP_TAG_SEIPD = 18, PGP_TAG_AEAD = 20,
};

/* The header at p[0..n): CABLES_ERR_SYNTAX when it is not one or does not fit in n. */
cables_status pgp_packet_header_read(const uint8_t *p, size_t n, struct pgp_packet_header *h,
    struct cables_err *err);

/*
 * Is p[0..n) the start of an encrypted OpenPGP message (see above)?
 * CABLES_OK, with the number of session-key packets in *nsk (may be NULL);
 * CABLES_ERR_SYNTAX with the reason otherwise.  The encrypted data packet's
 * header must be within n; its body need not be.
 */
cables_status pgp_packet_is_encrypted(const uint8_t *p, size_t n, size_t *nsk, struct cables_err *err);

/*
 * A session-key packet body's key ID (PKESK version 3: 8 bytes after the
 * version) as 16 lowercase hex digits; false for another packet or version.
 */
bool pgp_packet_pkesk_keyid(const uint8_t *body, size_t n, char id[17]);

/*
 * A version 3 PKESK body (RFC 4880 section 5.1): the key ID, the
 * public-key algorithm, and its fields, pointing into body: RSA (1, 2) one
 * MPI (m^e mod n, its value bytes); ECDH (18) the ephemeral point's MPI
 * value and the wrapped session key (RFC 6637 section 10).  Anything else,
 * or a field that overruns the body or leaves bytes after it, is
 * CABLES_ERR_SYNTAX (an algorithm we do not decrypt: CABLES_ERR_UNUSABLE).
 */
struct pgp_pkesk {
	char keyid[17];
	unsigned int algo;
	const uint8_t *mpi;		/* RSA: the encrypted block; ECDH: the ephemeral point */
	size_t mpi_len;
	const uint8_t *wrapped;		/* ECDH */
	size_t wrapped_len;
};

cables_status pgp_packet_pkesk_parse(const uint8_t *body, size_t n, struct pgp_pkesk *k, struct cables_err *err);

/*
 * The body of the first PKESK in the encrypted message p[0..n) naming key
 * ID id (never the wildcard): *body and *len point into p.
 * CABLES_ERR_NOTFOUND when none does, CABLES_ERR_SYNTAX when p is not an
 * encrypted message.
 */
cables_status pgp_packet_find_pkesk(const uint8_t *p, size_t n, const char id[17], const uint8_t **body,
    size_t *len, struct cables_err *err);

/*
 * Rewrite, in place, the encrypted message p[0..*n) (its start, as
 * pgp_packet_is_encrypted accepts it) so that its only session-key packets
 * are the PKESKs naming one of ids[0..nids) (16 lowercase hex digits each):
 * every other PKESK, every SKESK (passphrase) and marker packet is dropped;
 * the encrypted data packet and all after it follow unchanged, and *n is
 * the new length.  A PKESK naming no key (the wildcard ID of a hidden
 * recipient, or a version without a key ID) is never kept: it could be
 * anybody's.  Then gpg can only open the session key with a key in ids.
 *
 * *kept is the number of PKESKs kept.  CABLES_ERR_SYNTAX when p is not an
 * encrypted message, CABLES_ERR_NOTFOUND when no PKESK names a key in ids;
 * on error p[0..*n) may have been changed and is not to be used.
 */
cables_status pgp_packet_keep_pkesks(uint8_t *p, size_t *n, const char (*ids)[17], size_t nids, size_t *kept,
    struct cables_err *err);

#endif
