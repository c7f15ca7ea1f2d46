/* pad - size buckets and the padding field; see pad.h. */
#include "autoconfig.h"

#include <stdint.h>
#include <string.h>

#include <openssl/rand.h>

#include "mime.h"
#include "pad.h"
#include "util.h"

#define PAD_LINE 76		/* characters on one line of the field */
#define PAD_CHUNK 4096

static const char *const mode_words[] = { "none", "buckets" };

const char *
pad_mode_name(enum pad_mode m)
{
	return (unsigned int)m < 2 ? mode_words[m] : "?";
}

bool
pad_mode_parse(const char *word, enum pad_mode *m)
{
	for (int i = 0; i < 2; i++)
		if (str_ieq(word, mode_words[i])) {
			*m = (enum pad_mode)i;
			return true;
		}
	return false;
}

size_t
pad_wire(const struct pad_cost *c, size_t n)
{
	unsigned long long x = (unsigned long long)n * c->num;

	return c->fixed + (size_t)((x + c->den - 1) / c->den);
}

static unsigned int
log2_floor(size_t n)
{
	unsigned int e = 0;

	while (n >>= 1)
		e++;
	return e;
}

/*
 * Padme (Nikitin et al., "Reducing metadata leakage from encrypted files
 * and communication with PURBs", 2019): keep the top floor(log2 E) + 1 bits
 * of an E-bit length, round the rest up.
 */
static size_t
padme(size_t n)
{
	unsigned int e = log2_floor(n), s = log2_floor(e) + 1, zeros = e - s;
	size_t mask = ((size_t)1 << zeros) - 1;

	return (n + mask) & ~mask;
}

size_t
pad_bucket(size_t n)
{
	size_t b = PAD_FLOOR;

	if (n <= PAD_FLOOR)
		return PAD_FLOOR;
	if (n > PAD_POW2_MAX)
		return padme(n);
	while (b < n)
		b <<= 1;
	return b;
}

/* The largest plaintext length whose wire size is at most w (0 when none). */
static size_t
fit(const struct pad_cost *c, size_t w)
{
	size_t n;

	if (w < c->fixed || c->num == 0)
		return 0;
	n = (size_t)(((unsigned long long)(w - c->fixed) * c->den) / c->num);
	while (n > 0 && pad_wire(c, n) > w)
		n--;
	return n;
}

size_t
pad_target(size_t len, const struct pad_cost *c, size_t cap)
{
	size_t need = len + PAD_FIELD_MIN, n;

	/* wire(need) is within its bucket, so the largest length that fits is at least need. */
	n = fit(c, pad_bucket(pad_wire(c, need)));
	if (cap > 0 && pad_wire(c, n) > cap) {
		n = fit(c, cap);
		if (n < need)
			return len;
	}
	return n;
}

static void
random_chars(char *out, size_t n, bool *ok)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char r[PAD_CHUNK];

	if (RAND_bytes(r, (int)n) != 1) {
		*ok = false;
		return;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[r[i] & 63];
	OPENSSL_cleanse(r, n);
}

/*
 * The field is "Content-Padding:" then k lines of " " + d_i characters +
 * CRLF, the first one folded after the name: 16 + sum(3 + d_i) bytes.  The
 * first line holds at most PAD_FIRST characters, the others PAD_LINE, so
 * no line is longer than 77 characters and its CRLF.
 */
#define PAD_FIRST 60

static bool
layout(size_t n, size_t *lines, size_t *chars)
{
	const size_t name = sizeof(PAD_FIELD_NAME);	/* the name and its colon */

	for (size_t k = 1; k <= n; k++) {
		size_t frame = name + 3 * k, d;

		if (frame >= n)
			return false;
		d = n - frame;
		if (d < k)
			return false;
		if (d <= PAD_FIRST + (k - 1) * PAD_LINE) {
			*lines = k;
			*chars = d;
			return true;
		}
	}
	return false;
}

/* Characters on line i of k holding d in all: the first as full as it may be, the rest even. */
static size_t
line_chars(size_t i, size_t k, size_t d)
{
	size_t first = d - (k - 1) < PAD_FIRST ? d - (k - 1) : PAD_FIRST, rest = d - first;

	if (i == 0)
		return first;
	return rest / (k - 1) + (i - 1 < rest % (k - 1) ? 1 : 0);
}

cables_status
pad_write(size_t n, cables_status (*fn)(void *arg, const void *p, size_t n, struct cables_err *err), void *arg,
    struct cables_err *err)
{
	char chunk[PAD_CHUNK];
	size_t lines, chars, used = 0;
	bool ok = true;
	cables_status st;

	if (n < PAD_FIELD_MIN || !layout(n, &lines, &chars))
		return cables_fail(err, CABLES_ERR_ARG, "a padding field cannot be %zu bytes long", n);
	memcpy(chunk, PAD_FIELD_NAME ":", sizeof(PAD_FIELD_NAME));
	used = sizeof(PAD_FIELD_NAME);
	for (size_t line = 0; line < lines; line++) {
		size_t d = line_chars(line, lines, chars);

		if (used + d + 3 > sizeof(chunk)) {
			if ((st = fn(arg, chunk, used, err)) != CABLES_OK)
				return st;
			used = 0;
		}
		chunk[used++] = ' ';
		random_chars(chunk + used, d, &ok);
		if (!ok)
			return cables_fail(err, CABLES_ERR_CRYPTO, "padding: RAND_bytes failed");
		used += d;
		chunk[used++] = '\r';
		chunk[used++] = '\n';
	}
	st = fn(arg, chunk, used, err);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return st;
}

static bool
is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

size_t
pad_strip(const char *p, size_t len)
{
	struct mime_field f;
	size_t off = 0, more;
	struct mime_field next;
	bool any = false;

	if (mime_field_next(p, len, &off, &f) != 1 || f.name_len != strlen(PAD_FIELD_NAME) ||
	    !str_nieq(f.name, PAD_FIELD_NAME, f.name_len))
		return 0;
	for (size_t i = 0; i < f.value_len; i++) {
		unsigned char c = (unsigned char)f.value[i];

		if (is_b64(c))
			any = true;
		else if (c == '\r' && i + 1 < f.value_len && f.value[i + 1] == '\n')
			continue;
		else if (c != ' ' && c != '\t' && c != '\n')
			return 0;
	}
	/* Something of the entity must follow: a field, or at least the empty line. */
	more = off;
	if (!any || off >= len || (mime_field_next(p, len, &more, &next) != 1 && more == off))
		return 0;
	return off;
}
