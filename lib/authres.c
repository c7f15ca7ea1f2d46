/* authres - Authentication-Results header fields; see authres.h. */
#include "autoconfig.h"

#include <string.h>

#include "authres.h"
#include "util.h"

/* Deeper comments than this are not a header anyone writes: a syntax error. */
#define COMMENT_DEPTH_MAX 32

static bool
is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* RFC 2045 token characters; 8-bit bytes are allowed (RFC 6532 headers). */
static bool
is_token_char(unsigned char c)
{
	return c > ' ' && c != 127 && !is_tspecial(c);
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip folding white space and comments from *p; false on an unclosed or too deep comment. */
static bool
skip_cfws(const char *s, size_t len, size_t *p)
{
	size_t i = *p;
	int depth = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (depth == 0 && is_wsp(c)) {
			i++;
		} else if (c == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				return false;
			i++;
		} else if (depth > 0 && c == ')') {
			depth--;
			i++;
		} else if (depth > 0 && c == '\\') {
			i += 2;
		} else if (depth > 0) {
			i++;
		} else {
			break;
		}
	}
	if (depth > 0 || i > len)
		return false;
	*p = i;
	return true;
}

static cables_status
put_char(char *id, size_t idlen, size_t *n, char c, struct cables_err *err)
{
	if (*n + 1 >= idlen)
		return cables_fail(err, CABLES_ERR_TOOBIG, "authserv-id longer than %zu bytes", idlen - 1);
	id[(*n)++] = c;
	id[*n] = '\0';
	return CABLES_OK;
}

/* A quoted-string at s[*p] == '"': its content into id; folding inside is removed. */
static cables_status
read_quoted(const char *s, size_t len, size_t *p, char *id, size_t idlen, size_t *n, struct cables_err *err)
{
	size_t i = *p + 1;
	cables_status st;

	while (i < len && s[i] != '"') {
		char c = s[i];

		if (c == '\\') {
			if (++i >= len)
				break;
			c = s[i];
		} else if (c == '\r' || c == '\n') {
			i++;
			continue;
		}
		if ((st = put_char(id, idlen, n, c, err)) != CABLES_OK)
			return st;
		i++;
	}
	if (i >= len)
		return cables_fail(err, CABLES_ERR_SYNTAX, "unterminated quoted authserv-id");
	*p = i + 1;
	return CABLES_OK;
}

cables_status
authres_servid(const char *value, size_t len, char *id, size_t idlen, struct cables_err *err)
{
	size_t p = 0, n = 0;
	cables_status st;

	if (idlen == 0)
		return cables_fail(err, CABLES_ERR_ARG, "no room for the authserv-id");
	id[0] = '\0';
	/* A header value never holds NUL; one that does is not read (and so is claimed, see authres_claims). */
	if (memchr(value, '\0', len) != NULL)
		return cables_fail(err, CABLES_ERR_SYNTAX, "NUL byte in the field");
	if (!skip_cfws(value, len, &p))
		return cables_fail(err, CABLES_ERR_SYNTAX, "unclosed comment before the authserv-id");
	if (p < len && value[p] == '"') {
		if ((st = read_quoted(value, len, &p, id, idlen, &n, err)) != CABLES_OK)
			return st;
	} else {
		for (; p < len && is_token_char((unsigned char)value[p]); p++)
			if ((st = put_char(id, idlen, &n, value[p], err)) != CABLES_OK)
				return st;
	}
	if (n == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "no authserv-id");
	/* What follows: CFWS (then a version or ';'), ';', or the end. */
	if (p < len && value[p] != ';' && value[p] != '(' && !is_wsp((unsigned char)value[p]))
		return cables_fail(err, CABLES_ERR_SYNTAX, "unexpected '%c' after the authserv-id", value[p]);
	if (!skip_cfws(value, len, &p))
		return cables_fail(err, CABLES_ERR_SYNTAX, "unclosed comment after the authserv-id");
	return CABLES_OK;
}

/* a and b equal without case, a final dot on either ignored. */
static bool
id_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && str_nieq(a, b, la);
}

bool
authres_claims(const char *value, size_t len, const char *ours)
{
	char id[AUTHRES_ID_MAX];
	struct cables_err err;
	cables_status st = authres_servid(value, len, id, sizeof(id), &err);

	if (st == CABLES_ERR_TOOBIG)
		return strlen(ours) >= sizeof(id) - 1;	/* ours is never this long: not ours */
	return st != CABLES_OK || id_equal(id, ours);
}

bool
authres_is_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_token_char((unsigned char)*s))
			return false;
	return true;
}

void
authres_quote(struct buf *out, const char *v)
{
	buf_append(out, "\"", 1);
	for (const char *p = v; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, c < ' ' || c == 127 ? "?" : p, 1);
	}
	buf_append(out, "\"", 1);
}

void
authres_value(struct buf *out, const char *v)
{
	if (authres_is_token(v))
		buf_appends(out, v);
	else
		authres_quote(out, v);
}
