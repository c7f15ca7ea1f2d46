/* base64 - incremental decoder; see base64.h. */
#include "autoconfig.h"

#include "base64.h"

void
b64_decoder_init(struct b64_decoder *d)
{
	d->quad = 0;
	d->nq = 0;
	d->pad = 0;
	d->pos = 0;
}

static int
b64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

cables_status
b64_decode_update(struct b64_decoder *d, const uint8_t *in, size_t n, struct buf *out,
    struct cables_err *err)
{
	uint8_t dec[3];

	for (size_t i = 0; i < n; i++, d->pos++) {
		uint8_t c = in[i];
		int v;

		if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			if (d->nq < 2)
				return cables_fail(err, CABLES_ERR_SYNTAX, "bad base64: misplaced '=' at byte %llu",
				    (unsigned long long)d->pos);
			d->pad++;
			d->quad <<= 6;
		} else {
			if (d->pad > 0)
				return cables_fail(err, CABLES_ERR_SYNTAX, "bad base64: data after '=' at byte %llu",
				    (unsigned long long)d->pos);
			v = b64_value(c);
			if (v < 0)
				return cables_fail(err, CABLES_ERR_SYNTAX, "bad base64: character 0x%02x at byte %llu",
				    c, (unsigned long long)d->pos);
			d->quad = d->quad << 6 | (uint32_t)v;
		}
		if (++d->nq == 4) {
			dec[0] = (uint8_t)(d->quad >> 16);
			dec[1] = (uint8_t)(d->quad >> 8);
			dec[2] = (uint8_t)d->quad;
			buf_append(out, dec, (size_t)(3 - (d->pad < 3 ? d->pad : 2)));
			d->nq = 0;
			d->quad = 0;
		}
	}
	return CABLES_OK;
}

cables_status
b64_decode_final(struct b64_decoder *d, struct cables_err *err)
{
	if (d->nq != 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "truncated base64 (%d characters left over)", d->nq);
	return CABLES_OK;
}
