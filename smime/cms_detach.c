/* cms_detach - stream the content of a CMS structure; see cms_detach.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>

#include "base64.h"
#include "cms_detach.h"
#include "util.h"

#define MAX_DEPTH 16

/* A small read cache over a spool: BER headers are read a few bytes at a time. */
struct der_reader {
	const struct spool *sp;
	off_t size;
	off_t cache_off;
	size_t cache_len;
	uint8_t cache[4096];
};

static void
reader_init(struct der_reader *r, const struct spool *sp)
{
	r->sp = sp;
	r->size = (off_t)spool_size(sp);
	r->cache_off = 0;
	r->cache_len = 0;
}

static cables_status
reader_get(struct der_reader *r, off_t off, void *dst, size_t n, struct cables_err *err)
{
	size_t got;
	cables_status st;

	if (off < 0 || off > r->size || (off_t)n > r->size - off)
		return cables_fail(err, CABLES_ERR_SYNTAX, "CMS structure truncated at byte %lld", (long long)off);
	if (n <= sizeof(r->cache) && off >= r->cache_off &&
	    off + (off_t)n <= r->cache_off + (off_t)r->cache_len) {
		memcpy(dst, r->cache + (off - r->cache_off), n);
		return CABLES_OK;
	}
	if (n > sizeof(r->cache)) {
		st = spool_pread(r->sp, off, dst, n, &got, err);
		if (st == CABLES_OK && got != n)
			st = cables_fail(err, CABLES_ERR_IO, "short read from spool");
		return st;
	}
	st = spool_pread(r->sp, off, r->cache, sizeof(r->cache), &got, err);
	if (st != CABLES_OK)
		return st;
	r->cache_off = off;
	r->cache_len = got;
	if (got < n)
		return cables_fail(err, CABLES_ERR_SYNTAX, "CMS structure truncated at byte %lld", (long long)off);
	memcpy(dst, r->cache, n);
	return CABLES_OK;
}

struct ber {
	off_t off;		/* of the identifier octet */
	uint8_t ident;		/* first identifier octet (class, constructed, low tag) */
	bool constructed;
	bool indefinite;
	size_t hdr;		/* identifier and length octets */
	size_t len;		/* contents length (definite only) */
};

static off_t
ber_end(const struct ber *b)
{
	return b->off + (off_t)b->hdr + (off_t)b->len;
}

static cables_status
ber_header(struct der_reader *r, off_t off, struct ber *b, struct cables_err *err)
{
	uint8_t h[6], nlen;
	size_t i = 1, len = 0;
	cables_status st;

	memset(b, 0, sizeof(*b));
	b->off = off;
	if ((st = reader_get(r, off, h, 1, err)) != CABLES_OK)
		return st;
	b->ident = h[0];
	b->constructed = (h[0] & 0x20) != 0;
	if ((h[0] & 0x1f) == 0x1f) {
		/* High tag number: base-128 octets, the last without bit 8. */
		do {
			if (i > 5)
				return cables_fail(err, CABLES_ERR_SYNTAX, "BER tag too long at byte %lld", (long long)off);
			if ((st = reader_get(r, off + (off_t)i, h + 1, 1, err)) != CABLES_OK)
				return st;
			i++;
		} while (h[1] & 0x80);
	}
	if ((st = reader_get(r, off + (off_t)i, &nlen, 1, err)) != CABLES_OK)
		return st;
	i++;
	if (nlen == 0x80) {
		if (!b->constructed)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "indefinite length on a primitive element at byte %lld", (long long)off);
		b->indefinite = true;
	} else if (nlen & 0x80) {
		size_t k = nlen & 0x7f;

		if (k > 4)
			return cables_fail(err, CABLES_ERR_SYNTAX, "BER length too large at byte %lld", (long long)off);
		if ((st = reader_get(r, off + (off_t)i, h, k, err)) != CABLES_OK)
			return st;
		for (size_t j = 0; j < k; j++)
			len = len << 8 | h[j];
		i += k;
	} else {
		len = nlen;
	}
	b->hdr = i;
	b->len = len;
	if (!b->indefinite && ber_end(b) > r->size)
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "CMS structure truncated: element at byte %lld runs past the end of the data",
		    (long long)off);
	return CABLES_OK;
}

static cables_status
is_eoc(struct der_reader *r, off_t off, bool *yes, struct cables_err *err)
{
	uint8_t two[2];
	cables_status st = reader_get(r, off, two, 2, err);

	*yes = st == CABLES_OK && two[0] == 0 && two[1] == 0;
	return st;
}

/* Offset after the element at off (walking indefinite-length contents). */
static cables_status
ber_skip(struct der_reader *r, off_t off, int depth, off_t *next, struct cables_err *err)
{
	struct ber b;
	off_t pos;
	bool eoc;
	cables_status st;

	if (depth > MAX_DEPTH)
		return cables_fail(err, CABLES_ERR_SYNTAX, "BER nested too deeply");
	if ((st = ber_header(r, off, &b, err)) != CABLES_OK)
		return st;
	if (!b.indefinite) {
		*next = ber_end(&b);
		return CABLES_OK;
	}
	pos = off + (off_t)b.hdr;
	for (;;) {
		if ((st = is_eoc(r, pos, &eoc, err)) != CABLES_OK)
			return st;
		if (eoc) {
			*next = pos + 2;
			return CABLES_OK;
		}
		if ((st = ber_skip(r, pos, depth + 1, &pos, err)) != CABLES_OK)
			return st;
	}
}

/* The children of a constructed element, one at a time. */
struct children {
	off_t pos;
	off_t end;		/* -1: indefinite */
};

static void
children_init(struct children *c, const struct ber *parent)
{
	c->pos = parent->off + (off_t)parent->hdr;
	c->end = parent->indefinite ? -1 : ber_end(parent);
}

/* 1 with b set, 0 at the end, -1 on error. */
static int
children_next(struct der_reader *r, struct children *c, struct ber *b, struct cables_err *err)
{
	bool eoc;
	off_t next;

	if (c->end >= 0) {
		if (c->pos == c->end)
			return 0;
		if (c->pos > c->end) {
			cables_fail(err, CABLES_ERR_SYNTAX, "BER element overruns its parent");
			return -1;
		}
	} else {
		if (is_eoc(r, c->pos, &eoc, err) != CABLES_OK)
			return -1;
		if (eoc) {
			c->pos += 2;
			return 0;
		}
	}
	if (ber_header(r, c->pos, b, err) != CABLES_OK || ber_skip(r, c->pos, 0, &next, err) != CABLES_OK)
		return -1;
	if (c->end >= 0 && next > c->end) {
		cables_fail(err, CABLES_ERR_SYNTAX, "BER element at byte %lld overruns its parent",
		    (long long)c->pos);
		return -1;
	}
	c->pos = next;
	return 1;
}

/* Append the raw bytes of the element b (with its full encoding). */
static cables_status
copy_raw(struct der_reader *r, const struct ber *b, off_t end, struct buf *out, struct cables_err *err)
{
	size_t n = (size_t)(end - b->off);
	uint8_t *tmp;
	cables_status st;

	if (out->len + n > CMS_SKELETON_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "CMS structure outside the content exceeds %d bytes",
		    CMS_SKELETON_MAX);
	tmp = xmalloc(n);
	st = reader_get(r, b->off, tmp, n, err);
	if (st == CABLES_OK)
		buf_append(out, tmp, n);
	free(tmp);
	return st;
}

/* DER header with a definite length. */
static void
put_header(struct buf *out, uint8_t ident, size_t len)
{
	uint8_t h[6];
	size_t n = 0;

	h[n++] = ident;
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
	} else {
		size_t bytes = len > 0xffffff ? 4 : len > 0xffff ? 3 : len > 0xff ? 2 : 1;

		h[n++] = (uint8_t)(0x80 | bytes);
		for (size_t i = bytes; i > 0; i--)
			h[n++] = (uint8_t)(len >> (8 * (i - 1)));
	}
	buf_append(out, h, n);
}

static void
wrap(struct buf *out, uint8_t ident, const struct buf *contents)
{
	put_header(out, ident, contents->len);
	buf_append(out, contents->data, contents->len);
}

static const uint8_t oid_enveloped[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };
static const uint8_t oid_signed[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02 };
static const uint8_t oid_auth_enveloped[] = {
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17 };

static cables_status
content_kind(struct der_reader *r, const struct ber *oid, enum cms_kind *kind, struct cables_err *err)
{
	uint8_t v[16];
	cables_status st;

	if (oid->ident != 0x06 || oid->len > sizeof(v))
		return cables_fail(err, CABLES_ERR_SYNTAX, "CMS ContentInfo does not start with a content type");
	if ((st = reader_get(r, oid->off + (off_t)oid->hdr, v, oid->len, err)) != CABLES_OK)
		return st;
	if (oid->len == sizeof(oid_enveloped) && memcmp(v, oid_enveloped, oid->len) == 0)
		*kind = CMS_KIND_ENVELOPED;
	else if (oid->len == sizeof(oid_auth_enveloped) && memcmp(v, oid_auth_enveloped, oid->len) == 0)
		*kind = CMS_KIND_AUTH_ENVELOPED;
	else if (oid->len == sizeof(oid_signed) && memcmp(v, oid_signed, oid->len) == 0)
		*kind = CMS_KIND_SIGNED;
	else
		return cables_fail(err, CABLES_ERR_UNUSABLE,
		    "CMS content type is not enveloped, authEnveloped or signed data");
	return CABLES_OK;
}

/* The name of an AlgorithmIdentifier's OID, for error messages. */
static void
describe_algorithm(struct der_reader *r, const struct ber *alg, struct cms_detached *d)
{
	struct children ch;
	struct ber oid;
	uint8_t raw[64];
	const unsigned char *p = raw;
	ASN1_OBJECT *obj;

	children_init(&ch, alg);
	if (children_next(r, &ch, &oid, NULL) != 1 || oid.ident != 0x06 || oid.hdr + oid.len > sizeof(raw) ||
	    reader_get(r, oid.off, raw, oid.hdr + oid.len, NULL) != CABLES_OK)
		return;
	obj = d2i_ASN1_OBJECT(NULL, &p, (long)(oid.hdr + oid.len));
	if (obj != NULL)
		OBJ_obj2txt(d->algorithm, sizeof(d->algorithm), obj, 0);
	ASN1_OBJECT_free(obj);
}

/*
 * Rebuild the (Encrypted|Encapsulated)ContentInfo without its content: all
 * children but the [0] one, whose offset is remembered.
 */
static cables_status
detach_content_info(struct der_reader *r, const struct ber *ci, struct cms_detached *d,
    struct buf *out, struct cables_err *err)
{
	struct children ch;
	struct buf inner;
	struct ber b;
	int rc;
	cables_status st = CABLES_OK;

	if (!ci->constructed)
		return cables_fail(err, CABLES_ERR_SYNTAX, "CMS content info is not a SEQUENCE");
	buf_init(&inner);
	children_init(&ch, ci);
	while ((rc = children_next(r, &ch, &b, err)) == 1) {
		if ((b.ident & 0xdf) == 0x80) {		/* [0], primitive or constructed */
			if (d->has_content) {
				st = cables_fail(err, CABLES_ERR_SYNTAX, "CMS content info has two [0] elements");
				break;
			}
			d->has_content = true;
			if (d->kind == CMS_KIND_SIGNED) {
				/* [0] EXPLICIT OCTET STRING: the content is the element inside. */
				struct children in;
				struct ber os;

				if (!b.constructed) {
					st = cables_fail(err, CABLES_ERR_SYNTAX, "signed content is not [0] EXPLICIT");
					break;
				}
				children_init(&in, &b);
				if (children_next(r, &in, &os, err) != 1 || (os.ident & 0xdf) != 0x04) {
					st = cables_fail(err, CABLES_ERR_SYNTAX, "signed content is not an OCTET STRING");
					break;
				}
				d->content_off = os.off;
			} else {
				d->content_off = b.off;		/* [0] IMPLICIT OCTET STRING */
			}
			continue;
		}
		if (b.ident == 0x30 && d->algorithm[0] == '\0')
			describe_algorithm(r, &b, d);
		if ((st = copy_raw(r, &b, ch.pos, &inner, err)) != CABLES_OK)
			break;
	}
	if (rc < 0 && st == CABLES_OK)
		st = CABLES_ERR_SYNTAX;
	if (st == CABLES_OK)
		wrap(out, 0x30, &inner);
	buf_release(&inner);
	return st;
}

cables_status
cms_detach(const struct spool *der, struct cms_detached *d, struct cables_err *err)
{
	struct der_reader *r = xcalloc(1, sizeof(*r));
	struct ber top, oid, explicit0, data, b;
	struct children ch, in;
	struct buf body, content_info;
	bool seen_content_info = false;
	int rc;
	cables_status st;

	memset(d, 0, sizeof(*d));
	buf_init(&d->skeleton);
	buf_init(&body);
	buf_init(&content_info);
	reader_init(r, der);
	if ((st = ber_header(r, 0, &top, err)) != CABLES_OK)
		goto out;
	if (top.ident != 0x30) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "not a CMS structure (no ContentInfo SEQUENCE)");
		goto out;
	}
	children_init(&ch, &top);
	if (children_next(r, &ch, &oid, err) != 1 || (st = content_kind(r, &oid, &d->kind, err)) != CABLES_OK) {
		st = st != CABLES_OK ? st : cables_fail(err, CABLES_ERR_SYNTAX, "CMS ContentInfo is empty");
		goto out;
	}
	if (children_next(r, &ch, &explicit0, err) != 1 || explicit0.ident != 0xa0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "CMS ContentInfo has no [0] content");
		goto out;
	}
	children_init(&in, &explicit0);
	if (children_next(r, &in, &data, err) != 1 || data.ident != 0x30) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "CMS content is not a SEQUENCE");
		goto out;
	}
	/* The children of Enveloped/AuthEnveloped/SignedData: the first SEQUENCE is the content info. */
	children_init(&in, &data);
	while ((rc = children_next(r, &in, &b, err)) == 1) {
		if (b.ident == 0x30 && !seen_content_info) {
			seen_content_info = true;
			st = detach_content_info(r, &b, d, &body, err);
		} else {
			st = copy_raw(r, &b, in.pos, &body, err);
		}
		if (st != CABLES_OK)
			goto out;
	}
	if (rc < 0) {
		st = CABLES_ERR_SYNTAX;		/* err says where */
		goto out;
	}
	if (!seen_content_info) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "CMS content has no content info");
		goto out;
	}
	if ((st = ber_skip(r, 0, 0, &d->end, err)) != CABLES_OK)
		goto out;
	/* ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content } */
	copy_raw(r, &oid, ber_end(&oid), &content_info, err);
	{
		struct buf seq, exp;

		buf_init(&seq);
		buf_init(&exp);
		wrap(&seq, 0x30, &body);
		wrap(&exp, 0xa0, &seq);
		buf_append(&content_info, exp.data, exp.len);
		wrap(&d->skeleton, 0x30, &content_info);
		buf_release(&seq);
		buf_release(&exp);
	}
	st = CABLES_OK;
out:
	buf_release(&body);
	buf_release(&content_info);
	free(r);
	if (st != CABLES_OK)
		cms_detached_release(d);
	return st;
}

void
cms_detached_release(struct cms_detached *d)
{
	buf_release(&d->skeleton);
}

/*
 * The content BIO: walks the OCTET STRING at content_off, which may be
 * primitive or a (nested) series of primitive chunks, and returns their
 * contents in order.
 */
struct octets {
	struct der_reader rd;
	struct children stack[MAX_DEPTH];
	int depth;		/* -1: not started */
	off_t seg_off;
	size_t seg_left;
	bool done;		/* every chunk has been returned */
	bool error;		/* the encoding is broken */
	off_t root;
};

static BIO_METHOD *octets_method;
static pthread_once_t octets_once = PTHREAD_ONCE_INIT;

/* Make seg_* describe the next non-empty primitive chunk; false at the end or on error. */
static bool
octets_advance(struct octets *o)
{
	struct ber b;
	int rc;

	while (o->seg_left == 0 && !o->done && !o->error) {
		if (o->depth < 0) {
			if (ber_header(&o->rd, o->root, &b, NULL) != CABLES_OK) {
				o->error = true;
				break;
			}
			if (!b.constructed) {
				o->seg_off = b.off + (off_t)b.hdr;
				o->seg_left = b.len;
				o->done = true;		/* once this segment is read */
				break;
			}
			o->depth = 0;
			children_init(&o->stack[0], &b);
			continue;
		}
		rc = children_next(&o->rd, &o->stack[o->depth], &b, NULL);
		if (rc < 0 || (rc == 1 && (b.ident & 0x1f) != 0x04)) {
			o->error = true;	/* broken, or not an OCTET STRING chunk */
		} else if (rc == 0) {
			if (o->depth == 0)
				o->done = true;
			else
				o->depth--;
		} else if (b.constructed) {
			if (o->depth + 1 >= MAX_DEPTH)
				o->error = true;
			else
				children_init(&o->stack[++o->depth], &b);
		} else {
			o->seg_off = b.off + (off_t)b.hdr;
			o->seg_left = b.len;
		}
	}
	return o->seg_left > 0;
}

static int
octets_read(BIO *bio, char *out, int outl)
{
	struct octets *o = BIO_get_data(bio);
	size_t want, got;

	BIO_clear_retry_flags(bio);
	if (outl <= 0)
		return 0;
	if (o->seg_left == 0 && !octets_advance(o))
		return o->error ? -1 : 0;
	want = (size_t)outl < o->seg_left ? (size_t)outl : o->seg_left;
	if (spool_pread(o->rd.sp, o->seg_off, out, want, &got, NULL) != CABLES_OK || got == 0) {
		o->error = true;
		return -1;
	}
	o->seg_off += (off_t)got;
	o->seg_left -= got;
	return (int)got;
}

static long
octets_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct octets *o = BIO_get_data(bio);

	switch (cmd) {
	case BIO_CTRL_EOF:
		return (o->done || o->error) && o->seg_left == 0;
	case BIO_CTRL_PENDING:
		return 0;
	default:
		return cmd == BIO_CTRL_FLUSH ? 1 : 0;
	}
}

static int
octets_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static int
octets_destroy(BIO *bio)
{
	free(BIO_get_data(bio));
	BIO_set_data(bio, NULL);
	return 1;
}

static void
octets_method_init(void)
{
	octets_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cables CMS content");
	if (octets_method != NULL) {
		BIO_meth_set_read(octets_method, octets_read);
		BIO_meth_set_ctrl(octets_method, octets_ctrl);
		BIO_meth_set_create(octets_method, octets_create);
		BIO_meth_set_destroy(octets_method, octets_destroy);
	}
}

BIO *
cms_content_bio(const struct spool *der, const struct cms_detached *d)
{
	struct octets *o;
	BIO *bio;

	pthread_once(&octets_once, octets_method_init);
	if (octets_method == NULL || !d->has_content)
		return NULL;
	bio = BIO_new(octets_method);
	if (bio == NULL)
		return NULL;
	o = xcalloc(1, sizeof(*o));
	reader_init(&o->rd, der);
	o->depth = -1;
	o->root = d->content_off;
	BIO_set_data(bio, o);
	return bio;
}

cables_status
cms_decode_base64(const struct spool *in, off_t from, struct spool *out, struct cables_err *err)
{
	uint8_t chunk[16384];
	struct b64_decoder d;
	struct buf dec;
	size_t got;
	off_t off = from;
	cables_status st;

	b64_decoder_init(&d);
	buf_init(&dec);
	for (;;) {
		if ((st = spool_pread(in, off, chunk, sizeof(chunk), &got, err)) != CABLES_OK || got == 0)
			break;
		off += (off_t)got;
		buf_reset(&dec);
		if ((st = b64_decode_update(&d, chunk, got, &dec, err)) != CABLES_OK ||
		    (st = spool_append(out, dec.data, dec.len, err)) != CABLES_OK)
			break;
	}
	if (st == CABLES_OK)
		st = b64_decode_final(&d, err);
	buf_release(&dec);
	return st;
}
