/* khproto - the cables-keyholder wire protocol; see khproto.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "khproto.h"
#include "util.h"

#define OFF_OP 4
#define OFF_KEY 5
#define OFF_NID 6
#define OFF_ALEN 8
#define OFF_DLEN 10
#define OFF_FPR 12
#define OFF_ADDR (OFF_FPR + KH_FPR_LEN)
#define OFF_DATA (OFF_ADDR + KH_ADDR_MAX)
#define ROFF_LEN 6
#define ROFF_DATA 8

static const char *const op_names[KH_OP_MAX] = { "none", "rsa-decrypt", "rsa-decrypt-oaep", "ecdh", "sign",
    "exchange-sign", "ecdh-unwrap", "epoch-current", "vouch", "held-key" };
static const char *const status_names[KH_STATUS_MAX] = { "ok", "refused", "failed", "rate-limited",
    "unavailable" };

const char *
kh_op_name(enum kh_op op)
{
	return op > 0 && op < KH_OP_MAX ? op_names[op] : "unknown";
}

const char *
kh_key_name(enum kh_key k)
{
	return k == KH_KEY_SMIME ? "smime" : k == KH_KEY_PGP ? "pgp" : "unknown";
}

const char *
kh_status_name(enum kh_status st)
{
	return st < KH_STATUS_MAX ? status_names[st] : "unknown";
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned
get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* An address as the milter sends it: printable ASCII without spaces, one '@'. */
static bool
address_ok(const char *a, size_t n)
{
	size_t at = 0;

	if (n == 0 || n >= KH_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (a[i] <= ' ' || a[i] > '~')
			return false;
		at += a[i] == '@';
	}
	return at == 1;
}

static bool
is_hex(const char *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
			return false;
	return true;
}

/* 64 lowercase hex digits; for an OpenPGP key the last 8 are zero padding. */
static bool
fingerprint_ok(const char *f, enum kh_key k)
{
	if (!is_hex(f, KH_FPR_LEN) || f[KH_FPR_LEN] != '\0')
		return false;
	return k != KH_KEY_PGP || memcmp(f + KH_FPR_LEN - 8, "00000000", 8) == 0;
}

bool
kh_pgp_fingerprint(char out[KH_FPR_LEN + 1], const char *primary, const char *keyid)
{
	out[0] = '\0';
	if (strlen(primary) != 40 || strlen(keyid) != 16 || !is_hex(primary, 40) || !is_hex(keyid, 16))
		return false;
	snprintf(out, KH_FPR_LEN + 1, "%s%s00000000", primary, keyid);
	return true;
}

cables_status
kh_request_encode(uint8_t out[KH_REQUEST_SIZE], const struct kh_request *r, struct cables_err *err)
{
	size_t alen = strnlen(r->address, KH_ADDR_MAX);

	if (r->op <= 0 || r->op >= KH_OP_MAX || r->key >= KH_KEY_MAX || r->md_nid < 0 || r->md_nid > 0xffff ||
	    !address_ok(r->address, alen) || !fingerprint_ok(r->fingerprint, r->key) || r->len == 0 || r->len > KH_DATA_MAX)
		return cables_fail(err, CABLES_ERR_ARG, "keyholder request out of bounds");
	memset(out, 0, KH_REQUEST_SIZE);
	memcpy(out, "CKH1", 4);
	out[OFF_OP] = (uint8_t)r->op;
	out[OFF_KEY] = (uint8_t)r->key;
	put16(out + OFF_NID, (unsigned)r->md_nid);
	put16(out + OFF_ALEN, (unsigned)alen);
	put16(out + OFF_DLEN, (unsigned)r->len);
	memcpy(out + OFF_FPR, r->fingerprint, KH_FPR_LEN);
	memcpy(out + OFF_ADDR, r->address, alen);
	memcpy(out + OFF_DATA, r->data, r->len);
	return CABLES_OK;
}

cables_status
kh_request_decode(struct kh_request *r, const uint8_t in[KH_REQUEST_SIZE], struct cables_err *err)
{
	size_t alen = get16(in + OFF_ALEN), dlen = get16(in + OFF_DLEN);

	memset(r, 0, sizeof(*r));
	if (memcmp(in, "CKH1", 4) != 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "bad magic");
	if (in[OFF_OP] == 0 || in[OFF_OP] >= KH_OP_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "unknown operation %u", in[OFF_OP]);
	if (in[OFF_KEY] >= KH_KEY_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "unknown key kind %u", in[OFF_KEY]);
	if (alen == 0 || alen >= KH_ADDR_MAX || dlen == 0 || dlen > KH_DATA_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "length out of range (address %zu, data %zu)", alen, dlen);
	if (!all_zero(in + OFF_ADDR + alen, KH_ADDR_MAX - alen) || !all_zero(in + OFF_DATA + dlen, KH_DATA_MAX - dlen))
		return cables_fail(err, CABLES_ERR_SYNTAX, "non-zero padding");
	r->op = (enum kh_op)in[OFF_OP];
	r->key = (enum kh_key)in[OFF_KEY];
	r->md_nid = (int)get16(in + OFF_NID);
	memcpy(r->fingerprint, in + OFF_FPR, KH_FPR_LEN);
	memcpy(r->address, in + OFF_ADDR, alen);
	if (!fingerprint_ok(r->fingerprint, r->key) || !address_ok(r->address, alen)) {
		memset(r, 0, sizeof(*r));
		return cables_fail(err, CABLES_ERR_SYNTAX, "malformed fingerprint or address");
	}
	memcpy(r->data, in + OFF_DATA, dlen);
	r->len = dlen;
	return CABLES_OK;
}

cables_status
kh_reply_encode(uint8_t out[KH_REPLY_SIZE], const struct kh_reply *r, struct cables_err *err)
{
	if (r->status >= KH_STATUS_MAX || r->len > KH_DATA_MAX || (r->status != KH_OK && r->len != 0))
		return cables_fail(err, CABLES_ERR_ARG, "keyholder reply out of bounds");
	memset(out, 0, KH_REPLY_SIZE);
	memcpy(out, "CKR1", 4);
	out[4] = (uint8_t)r->status;
	put16(out + ROFF_LEN, (unsigned)r->len);
	memcpy(out + ROFF_DATA, r->data, r->len);
	return CABLES_OK;
}

cables_status
kh_reply_decode(struct kh_reply *r, const uint8_t in[KH_REPLY_SIZE], struct cables_err *err)
{
	size_t len = get16(in + ROFF_LEN);

	memset(r, 0, sizeof(*r));
	if (memcmp(in, "CKR1", 4) != 0 || in[4] >= KH_STATUS_MAX || in[5] != 0 || len > KH_DATA_MAX ||
	    (in[4] != KH_OK && len != 0) || !all_zero(in + ROFF_DATA + len, KH_DATA_MAX - len))
		return cables_fail(err, CABLES_ERR_SYNTAX, "malformed keyholder reply");
	r->status = (enum kh_status)in[4];
	memcpy(r->data, in + ROFF_DATA, len);
	r->len = len;
	return CABLES_OK;
}
