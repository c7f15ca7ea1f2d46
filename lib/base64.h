/*
 * base64 - an incremental base64 decoder for MIME bodies: line breaks and
 * blanks are skipped, '=' padding only at the end, anything else is an
 * error naming the byte.  Used for S/MIME bodies of any size (fed in
 * chunks) and for signature parts.
 */
#ifndef CABLES_BASE64_H
#define CABLES_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "util.h"

struct b64_decoder {
	uint32_t quad;
	int nq;			/* characters in quad */
	int pad;		/* '=' seen */
	uint64_t pos;		/* input bytes consumed, for messages */
};

void b64_decoder_init(struct b64_decoder *d);
/* Decode in[0..n) appending to out. */
cables_status b64_decode_update(struct b64_decoder *d, const uint8_t *in, size_t n, struct buf *out,
    struct cables_err *err);
/* The input must end on a whole group. */
cables_status b64_decode_final(struct b64_decoder *d, struct cables_err *err);

#endif
