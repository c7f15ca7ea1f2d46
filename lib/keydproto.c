/* keydproto - the cables-keyd request parser; see keydproto.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "keydproto.h"
#include "util.h"

void
keyd_request_release(struct keyd_request *req)
{
	for (size_t i = 0; i < req->naddresses; i++)
		free(req->addresses[i]);
	req->naddresses = 0;
}

void
keyd_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 32 || *s == 127)
			*s = '?';
}

cables_status
keyd_request_parse(const char *text, size_t len, struct keyd_request *req, struct cables_err *err)
{
	bool have_type = false;
	size_t off = 0, lineno = 0;

	memset(req, 0, sizeof(*req));
	while (off < len) {
		const char *line = text + off, *nl = memchr(line, '\n', len - off), *eq;
		size_t n = nl != NULL ? (size_t)(nl - line) : len - off;
		char name[32], *value;

		off += n + (nl != NULL ? 1 : 0);
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: empty line inside the request", lineno);
		if (n > KEYD_LINE_MAX)
			return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: longer than %d bytes", lineno, KEYD_LINE_MAX);
		if (memchr(line, '\0', n) != NULL)
			return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: NUL byte", lineno);
		eq = memchr(line, '=', n);
		if (eq == NULL || eq == line || (size_t)(eq - line) >= sizeof(name))
			return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: not name=value", lineno);
		memcpy(name, line, (size_t)(eq - line));
		name[eq - line] = '\0';
		value = xstrndup(eq + 1, n - (size_t)(eq - line) - 1);
		if (strcmp(name, "request") == 0) {
			if (have_type) {
				free(value);
				return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: request given twice", lineno);
			}
			have_type = true;
			if (strcmp(value, "lookup") == 0) {
				req->type = KEYD_LOOKUP;
			} else if (strcmp(value, "stats") == 0) {
				req->type = KEYD_STATS;
			} else {
				keyd_sanitize(value);
				cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: unknown request '%.64s' (lookup, stats)", lineno,
				    value);
				free(value);
				return CABLES_ERR_SYNTAX;
			}
			free(value);
		} else if (strcmp(name, "address") == 0) {
			if (!addr_valid(value)) {
				keyd_sanitize(value);
				cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: '%.64s' is not an email address", lineno, value);
				free(value);
				return CABLES_ERR_SYNTAX;
			}
			if (req->naddresses == KEYD_ADDRESSES_MAX) {
				free(value);
				return cables_fail(err, CABLES_ERR_SYNTAX, "more than %d addresses", KEYD_ADDRESSES_MAX);
			}
			req->addresses[req->naddresses++] = value;
		} else {
			free(value);
			keyd_sanitize(name);
			return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: unknown name '%s' (request, address)", lineno,
			    name);
		}
	}
	if (!have_type)
		return cables_fail(err, CABLES_ERR_SYNTAX, "no request= line");
	if (req->type == KEYD_LOOKUP && req->naddresses == 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "lookup without an address= line");
	if (req->type != KEYD_LOOKUP && req->naddresses > 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "address= lines belong to a lookup only");
	return CABLES_OK;
}
