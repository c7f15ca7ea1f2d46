/* mime - header fields, splitting, Content-Type, encryption detection; see mime.h. */
#include "autoconfig.h"

#include <string.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "mime.h"
#include "util.h"

void
mime_init(void)
{
	g_mime_init();
}

bool
mime_is_content_header(const char *name, size_t len)
{
	return (len >= 8 && str_nieq(name, "Content-", 8)) ||
	    (len == 12 && str_nieq(name, "MIME-Version", 12));
}

/* Length of the line at p (up to and including '\n', or to end). */
static size_t
line_length(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);

	return nl != NULL ? (size_t)(nl - p) + 1 : len;
}

static bool
is_blank_line(const char *p, size_t n)
{
	return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n') ||
	    (n == 1 && p[0] == '\r');
}

/* Length of a field name at p followed by optional WSP and ':'; 0 if not a field. */
static size_t
field_name_length(const char *p, size_t n, size_t *colon)
{
	size_t i = 0, name_len;

	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':')
		i++;
	name_len = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (name_len == 0 || i >= n || p[i] != ':')
		return 0;
	*colon = i;
	return name_len;
}

int
mime_field_next(const char *p, size_t len, size_t *off, struct mime_field *f)
{
	size_t start = *off, pos, n, colon, name_len, end;

	if (start >= len)
		return 0;
	n = line_length(p + start, len - start);
	if (is_blank_line(p + start, n)) {
		*off = start + n;
		return 0;
	}
	name_len = field_name_length(p + start, n, &colon);
	if (name_len == 0)
		return 0;
	pos = start + n;
	while (pos < len && (p[pos] == ' ' || p[pos] == '\t'))
		pos += line_length(p + pos, len - pos);
	end = pos;
	/* The value stops before the final line break. */
	if (end > start && p[end - 1] == '\n') {
		end--;
		if (end > start && p[end - 1] == '\r')
			end--;
	}
	f->name = p + start;
	f->name_len = name_len;
	f->value = p + start + colon + 1;
	f->value_len = end - (start + colon + 1);
	f->raw = p + start;
	f->raw_len = pos - start;
	*off = pos;
	return 1;
}

void
mime_split(const char *msg, size_t len, struct buf *outer, struct buf *content, size_t *body_off)
{
	struct mime_field f;
	size_t off = 0;

	while (mime_field_next(msg, len, &off, &f) == 1)
		buf_append(mime_is_content_header(f.name, f.name_len) ? content : outer,
		    f.raw, f.raw_len);
	*body_off = off;
}

static char *
lower_dup(const char *s)
{
	char *d = xstrdup(s != NULL ? s : "");

	str_lower(d);
	return d;
}

static char *
param_dup(GMimeContentType *ct, const char *name)
{
	const char *v = g_mime_content_type_get_parameter(ct, name);

	return v != NULL ? xstrdup(v) : NULL;
}

void
mime_type_parse(const char *value, struct mime_type *t)
{
	GMimeContentType *ct;

	memset(t, 0, sizeof(*t));
	ct = g_mime_content_type_parse(NULL, value != NULL ? value : "text/plain");
	if (ct == NULL) {
		t->type = xstrdup("text");
		t->subtype = xstrdup("plain");
		return;
	}
	t->type = lower_dup(g_mime_content_type_get_media_type(ct));
	t->subtype = lower_dup(g_mime_content_type_get_media_subtype(ct));
	t->smime_type = param_dup(ct, "smime-type");
	t->protocol = param_dup(ct, "protocol");
	t->name = param_dup(ct, "name");
	t->boundary = param_dup(ct, "boundary");
	g_object_unref(ct);
}

void
mime_type_release(struct mime_type *t)
{
	free(t->type);
	free(t->subtype);
	free(t->smime_type);
	free(t->protocol);
	free(t->name);
	free(t->boundary);
	memset(t, 0, sizeof(*t));
}

char *
mime_type_param(const char *value, const char *param)
{
	GMimeContentType *ct = g_mime_content_type_parse(NULL, value != NULL ? value : "text/plain");
	char *v;

	if (ct == NULL)
		return NULL;
	v = param_dup(ct, param);
	g_object_unref(ct);
	return v;
}


static void
collect_addresses(InternetAddressList *list, char ***out, size_t *n)
{
	for (int i = 0; list != NULL && i < internet_address_list_length(list); i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			collect_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out, n);
		} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));

			if (a != NULL && a[0] != '\0') {
				*out = xreallocarray(*out, *n + 1, sizeof(**out));
				(*out)[(*n)++] = xstrdup(a);
			}
		}
	}
}

char *
mime_first_address(const char *value)
{
	char **all, *addr;
	size_t n = mime_addresses(value, &all);

	addr = n > 0 ? all[0] : NULL;
	for (size_t i = 1; i < n; i++)
		free(all[i]);
	free(all);
	return addr;
}

size_t
mime_addresses(const char *value, char ***out)
{
	InternetAddressList *list;
	size_t n = 0;

	*out = NULL;
	if (value == NULL)
		return 0;
	list = internet_address_list_parse(NULL, value);
	collect_addresses(list, out, &n);
	if (list != NULL)
		g_object_unref(list);
	return n;
}

char *
mime_addresses_canonical(const char *value)
{
	InternetAddressList *list;
	char **addrs = NULL, *s, *out = NULL;
	size_t n = 0;

	if (value == NULL || (list = internet_address_list_parse(NULL, value)) == NULL)
		return NULL;
	collect_addresses(list, &addrs, &n);
	for (size_t i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
	if (n > 0 && (s = internet_address_list_to_string(list, NULL, TRUE)) != NULL) {
		out = xstrdup(s);
		g_free(s);
	}
	g_object_unref(list);
	return out;
}

bool
mime_type_is(const struct mime_type *t, const char *type, const char *subtype)
{
	return strcmp(t->type, type) == 0 && (subtype == NULL || strcmp(t->subtype, subtype) == 0);
}

const char *
mime_crypto_name(enum mime_crypto c)
{
	switch (c) {
	case MIME_PLAIN:		return "plain";
	case MIME_SMIME_ENVELOPED:	return "smime-enveloped";
	case MIME_SMIME_AUTHENVELOPED:	return "smime-authenveloped";
	case MIME_PGP_MIME:		return "pgp-mime";
	case MIME_PGP_INLINE:		return "pgp-inline";
	}
	return "unknown";
}

bool
mime_cte_is_base64(const char *cte)
{
	char tmp[64];

	if (cte == NULL)
		return false;
	strlcpy_c(tmp, cte, sizeof(tmp));
	return str_ieq(str_trim(tmp), "base64");
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
line_is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_blank(p[i]))
			return false;
	return true;
}

/* Length of the line without trailing white space and line break. */
static size_t
trimmed_length(const char *p, size_t n)
{
	while (n > 0 && is_blank(p[n - 1]))
		n--;
	return n;
}

/* A whole line that is exactly marker (trailing white space allowed). */
static bool
line_is_marker(const char *p, size_t n, bool at_start, bool whole, const char *marker)
{
	size_t len = strlen(marker);

	return at_start && whole && trimmed_length(p, n) == len && memcmp(p, marker, len) == 0;
}

/* Radix-64 data, a "=XXXX" checksum, or a piece of a long data line. */
static bool
line_is_radix64(const char *p, size_t n)
{
	size_t i = 0, len = trimmed_length(p, n);

	if (len > 0 && p[0] == '=')
		i = 1;
	for (; i < len; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '+' || p[i] == '/' || p[i] == '='))
			return false;
	return true;
}

/* An armor header line (RFC 4880 6.2) with one of the keys it defines. */
static bool
line_is_armor_header(const char *p, size_t n)
{
	static const char *const keys[] = { "Version: ", "Comment: ", "MessageID: ", "Hash: ", "Charset: " };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (n >= strlen(keys[i]) && memcmp(p, keys[i], strlen(keys[i])) == 0)
			return true;
	return false;
}

#define PGP_BEGIN "-----BEGIN PGP MESSAGE-----"
#define PGP_END "-----END PGP MESSAGE-----"

/*
 * One armored PGP MESSAGE, line by line: white space before it, the BEGIN
 * line, armor headers, an empty line, radix-64 data and checksum, the END
 * line, white space after it.  Marker lines must be exact, so that text
 * hidden on a marker line or between the markers is never taken for
 * ciphertext.
 */
enum armor_state { ARMOR_BEFORE, ARMOR_HEADERS, ARMOR_DATA, ARMOR_AFTER, ARMOR_BAD };

static enum armor_state
armor_step(enum armor_state s, const char *line, size_t n, bool at_start, bool whole)
{
	switch (s) {
	case ARMOR_BEFORE:
		if (line_is_marker(line, n, at_start, whole, PGP_BEGIN))
			return ARMOR_HEADERS;
		return line_is_blank(line, n) ? s : ARMOR_BAD;
	case ARMOR_HEADERS:
		if (at_start && line_is_blank(line, n))
			return ARMOR_DATA;
		if (at_start && line_is_radix64(line, n) && !line_is_blank(line, n))
			return ARMOR_DATA;	/* no header block (tolerated, as GnuPG does) */
		return at_start && line_is_armor_header(line, n) ? s : ARMOR_BAD;
	case ARMOR_DATA:
		if (line_is_marker(line, n, at_start, whole, PGP_END))
			return ARMOR_AFTER;
		return line_is_radix64(line, n) ? s : ARMOR_BAD;
	case ARMOR_AFTER:
		return line_is_blank(line, n) ? s : ARMOR_BAD;
	case ARMOR_BAD:
		break;
	}
	return ARMOR_BAD;
}

/* Where the armor starts (its BEGIN line) and ends (after its END line). */
static void
armor_track(enum armor_state from, enum armor_state to, off_t off, size_t n, off_t range[2])
{
	if (from == ARMOR_BEFORE && to == ARMOR_HEADERS)
		range[0] = off;
	else if (from == ARMOR_DATA && to == ARMOR_AFTER)
		range[1] = off + (off_t)n;
}

/* Inline PGP: the body is exactly one armored PGP MESSAGE, with nothing but white space around it. */
static cables_status
detect_inline_pgp(const struct spool *body, bool *yes, off_t range[2], struct cables_err *err)
{
	struct spool_lines *r = xmalloc(sizeof(*r));
	enum armor_state state = ARMOR_BEFORE;
	const char *line;
	size_t n;
	off_t off;
	bool at_start, whole;
	cables_status st = CABLES_OK;

	*yes = false;
	spool_lines_init(r, body, 0, -1);
	while (state != ARMOR_BAD) {
		st = spool_lines_next(r, &line, &n, &off, &at_start, &whole, err);
		if (st != CABLES_OK || n == 0)
			break;
		enum armor_state prev = state;

		state = armor_step(state, line, n, at_start, whole);
		armor_track(prev, state, off, n, range);
	}
	if (st == CABLES_OK && state == ARMOR_AFTER)
		*yes = true;
	free(r);
	return st;
}

/* A whole line "--boundary" (close: "--boundary--"), trailing white space allowed. */
static bool
line_is_boundary(const char *p, size_t n, bool at_start, bool whole, const char *boundary, bool close)
{
	size_t blen = strlen(boundary), len = trimmed_length(p, n);

	return at_start && whole && len == blen + (close ? 4 : 2) && p[0] == '-' && p[1] == '-' &&
	    memcmp(p + 2, boundary, blen) == 0 && (!close || (p[len - 2] == '-' && p[len - 1] == '-'));
}

/*
 * PGP/MIME (RFC 3156): exactly two body parts, the second of which is one
 * armored PGP MESSAGE and nothing else, and nothing but white space after
 * the closing delimiter.  The preamble may hold text (clients put a notice
 * there, and none shows it).  A line saying BEGIN PGP MESSAGE in an
 * otherwise readable body is not ciphertext.
 */
static cables_status
detect_pgp_mime(const struct spool *body, const char *boundary, bool *yes, off_t range[2], struct cables_err *err)
{
	struct spool_lines *r = xmalloc(sizeof(*r));
	enum { PREAMBLE, HEAD1, BODY1, HEAD2, ARMOR, EPILOGUE, BAD } state = PREAMBLE;
	enum armor_state armor = ARMOR_BEFORE;
	const char *line;
	size_t n;
	off_t off;
	bool at_start, whole, open, close;
	enum armor_state prev;
	cables_status st = CABLES_OK;

	*yes = false;
	if (boundary == NULL || boundary[0] == '\0' || strlen(boundary) > 70) {
		free(r);
		return CABLES_OK;
	}
	spool_lines_init(r, body, 0, -1);
	while (state != BAD) {
		st = spool_lines_next(r, &line, &n, &off, &at_start, &whole, err);
		if (st != CABLES_OK || n == 0)
			break;
		open = line_is_boundary(line, n, at_start, whole, boundary, false);
		close = line_is_boundary(line, n, at_start, whole, boundary, true);
		switch (state) {
		case PREAMBLE:
			if (open)
				state = HEAD1;
			break;
		case HEAD1:
		case HEAD2:
			if (open || close)
				state = BAD;
			else if (at_start && line_is_blank(line, n))
				state = state == HEAD1 ? BODY1 : ARMOR;
			break;
		case BODY1:
			if (close)
				state = BAD;
			else if (open)
				state = HEAD2;
			break;
		case ARMOR:
			if (close)
				state = armor == ARMOR_AFTER ? EPILOGUE : BAD;
			else if (open)
				state = BAD;
			else {
				prev = armor;
				if ((armor = armor_step(armor, line, n, at_start, whole)) == ARMOR_BAD)
					state = BAD;
				armor_track(prev, armor, off, n, range);
			}
			break;
		case EPILOGUE:
			if (!line_is_blank(line, n))
				state = BAD;
			break;
		case BAD:
			break;
		}
	}
	if (st == CABLES_OK && state == EPILOGUE)
		*yes = true;
	free(r);
	return st;
}

/* DER: SEQUENCE { OBJECT IDENTIFIER contentType, ... } */
static const unsigned char oid_enveloped[] = {
	0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03 };
static const unsigned char oid_auth_enveloped[] = {
	0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17 };

static enum mime_crypto
cms_content_type(const unsigned char *der, size_t n)
{
	size_t i = 2;

	if (n < 2 || der[0] != 0x30)
		return MIME_PLAIN;
	if (der[1] & 0x80)
		i += der[1] & 0x7f;	/* long form or indefinite (0x80) */
	if (i + sizeof(oid_auth_enveloped) > n && i + sizeof(oid_enveloped) > n)
		return MIME_PLAIN;
	if (i + sizeof(oid_enveloped) <= n &&
	    memcmp(der + i, oid_enveloped, sizeof(oid_enveloped)) == 0)
		return MIME_SMIME_ENVELOPED;
	if (i + sizeof(oid_auth_enveloped) <= n &&
	    memcmp(der + i, oid_auth_enveloped, sizeof(oid_auth_enveloped)) == 0)
		return MIME_SMIME_AUTHENVELOPED;
	return MIME_PLAIN;
}

/* Look at the first bytes of a base64 (or binary) CMS body. */
static cables_status
detect_cms(const struct spool *body, bool base64, enum mime_crypto *out, struct cables_err *err)
{
	unsigned char raw[512], der[64];
	char b64[65];
	size_t got, k = 0;
	int n;
	cables_status st;

	*out = MIME_PLAIN;
	st = spool_pread(body, 0, raw, sizeof(raw), &got, err);
	if (st != CABLES_OK)
		return st;
	if (!base64) {
		*out = cms_content_type(raw, got);
		return CABLES_OK;
	}
	for (size_t i = 0; i < got && k < 64; i++) {
		unsigned char c = raw[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			b64[k++] = (char)c;
		else if (c != '\r' && c != '\n' && c != ' ' && c != '\t')
			return CABLES_OK;	/* not base64 */
	}
	k -= k % 4;
	if (k < 24)
		return CABLES_OK;
	b64[k] = '\0';
	n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)k);
	if (n > 0)
		*out = cms_content_type(der, (size_t)n);
	return CABLES_OK;
}

static bool
name_is_p7m(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	return n >= 4 && str_ieq(name + n - 4, ".p7m");
}

cables_status
mime_detect(const char *content_type, const char *cte, const struct spool *body,
    enum mime_crypto *out, struct cables_err *err)
{
	off_t range[2];

	return mime_detect_armor(content_type, cte, body, out, range, err);
}

cables_status
mime_detect_armor(const char *content_type, const char *cte, const struct spool *body,
    enum mime_crypto *out, off_t armor[2], struct cables_err *err)
{
	struct mime_type t;
	cables_status st = CABLES_OK;
	bool yes = false, base64 = false;

	armor[0] = armor[1] = 0;
	*out = MIME_PLAIN;
	mime_type_parse(content_type, &t);
	base64 = mime_cte_is_base64(cte);
	if (mime_type_is(&t, "application", "pkcs7-mime") ||
	    mime_type_is(&t, "application", "x-pkcs7-mime") ||
	    (mime_type_is(&t, "application", "octet-stream") && name_is_p7m(t.name))) {
		st = detect_cms(body, base64, out, err);
	} else if (mime_type_is(&t, "multipart", "encrypted") && t.protocol != NULL &&
	    str_ieq(t.protocol, "application/pgp-encrypted")) {
		st = detect_pgp_mime(body, t.boundary, &yes, armor, err);
		if (yes)
			*out = MIME_PGP_MIME;
	} else if (mime_type_is(&t, "text", "plain")) {
		st = detect_inline_pgp(body, &yes, armor, err);
		if (yes)
			*out = MIME_PGP_INLINE;
	}
	mime_type_release(&t);
	if (st != CABLES_OK)
		*out = MIME_PLAIN;
	return st;
}

/* Length of the line break ending a piece (2 CRLF, 1 LF, 0 none). */
static size_t
line_break_len(const char *line, size_t n)
{
	if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n')
		return 2;
	return n >= 1 && line[n - 1] == '\n' ? 1 : 0;
}

cables_status
mime_signed_parts(const struct spool *sp, off_t from, off_t to, const char *boundary, off_t start[2], off_t end[2],
    struct cables_err *err)
{
	struct spool_lines *lines;
	int delimiters = 0;
	size_t n, prev_break = 0;
	const char *line;
	off_t off;
	bool at_start, whole, closing = false;
	cables_status st = CABLES_OK;

	start[0] = start[1] = end[0] = end[1] = -1;
	if (boundary == NULL || boundary[0] == '\0' || strlen(boundary) > 70)
		return cables_fail(err, CABLES_ERR_SYNTAX, "multipart/signed without a usable boundary");
	lines = xmalloc(sizeof(*lines));
	spool_lines_init(lines, sp, from, to);
	while (!closing) {
		if ((st = spool_lines_next(lines, &line, &n, &off, &at_start, &whole, err)) != CABLES_OK || n == 0)
			break;
		closing = line_is_boundary(line, n, at_start, whole, boundary, true);
		if (closing || line_is_boundary(line, n, at_start, whole, boundary, false)) {
			if (delimiters > 0)
				end[delimiters - 1] = off - (off_t)prev_break;
			if (delimiters < 2 && !closing)
				start[delimiters] = off + (off_t)n;
			if (++delimiters > 3 || (delimiters == 3 && !closing))
				break;
		}
		prev_break = line_break_len(line, n);
	}
	free(lines);
	if (st != CABLES_OK)
		return st;
	if (delimiters != 3 || !closing || end[0] < start[0] || end[1] < start[1])
		return cables_fail(err, CABLES_ERR_SYNTAX, "multipart/signed is not exactly two parts closed by the boundary");
	return CABLES_OK;
}
