/* keydproto - the cables-keyd protocol, both directions; see keydproto.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "addr.h"
#include "keydproto.h"
#include "util.h"

void
keyd_request_release(struct keyd_request *req)
{
	for (size_t i = 0; i < req->naddresses; i++)
		free(req->addresses[i]);
	free(req->addresses);
	req->addresses = NULL;
	req->naddresses = req->addresses_room = 0;
	free(req->format);
	free(req->fingerprint);
	req->format = req->fingerprint = NULL;
	buf_release(&req->data);
}

/* The words of the enums, in their order. */
static const char *const request_names[] = { "lookup", "stats", "import", "delete", "list", "check" };
static const char *const outcome_names[] = { "found", "none", "tempfail", "reject" };
static const char *const format_names[] = { "smime", "pgp" };
static const char *const source_names[] = { "generated", "imported", "harvested", "dns-dnssec", "dns-insecure", "peer",
	"wkd", "peer-epoch" };
static const char *const trust_names[] = { "local", "dnssec", "insecure" };
static const char *const check_names[] = { "cached", "lookup", "unresponsive" };

#define NAMES(a) (sizeof(a) / sizeof((a)[0]))

static const char *
name_of(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "?";
}

static bool
parse_word(const char *const *names, size_t n, const char *word, int *out)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(word, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	return false;
}
const char *
keyd_request_type_name(enum keyd_request_type t)
{
	return name_of(request_names, NAMES(request_names), (int)t);
}

bool
keyd_request_type_parse(const char *word, enum keyd_request_type *out)
{
	int v;

	return parse_word(request_names, NAMES(request_names), word, &v) && (*out = (enum keyd_request_type)v, true);
}

/* One name=value line other than request= into req; value is taken over. */
static cables_status
field(struct keyd_request *req, size_t lineno, const char *name, char *value, struct cables_err *err)
{
	const char *bad = NULL;

	if (strcmp(name, "address") == 0) {
		if (!addr_valid(value))
			bad = "is not an email address";
		else if (req->naddresses == KEYD_ADDRESSES_MAX)
			bad = "is one address too many (" KEYD_ADDRESSES_MAX_S " at most in one request)";
		else {
			if (req->naddresses == req->addresses_room) {
				req->addresses_room = req->addresses_room == 0 ? 8 : 2 * req->addresses_room;
				req->addresses = xreallocarray(req->addresses, req->addresses_room, sizeof(*req->addresses));
			}
			req->addresses[req->naddresses++] = value;
			return CABLES_OK;
		}
	} else if (strcmp(name, "format") == 0) {
		if (req->format != NULL)
			bad = "is a second format";
		else if (strcmp(value, "smime") != 0 && strcmp(value, "pgp") != 0)
			bad = "is not a format (smime, pgp)";
		else {
			req->format = value;
			return CABLES_OK;
		}
	} else if (strcmp(name, "fingerprint") == 0) {
		size_t n = strlen(value);

		if (req->fingerprint != NULL)
			bad = "is a second fingerprint";
		else if (n < 8 || n > 64 || strspn(value, "0123456789abcdefABCDEF") != n)
			bad = "is not a hex fingerprint prefix of 8 to 64 digits";
		else {
			req->fingerprint = value;
			return CABLES_OK;
		}
	} else if (strcmp(name, "force") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			bad = "is not yes or no";
		else
			req->force = strcmp(value, "yes") == 0;
	} else if (strcmp(name, "data") == 0) {
		size_t n = strlen(value);

		if (strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != n)
			bad = "is not base64";
		else
			buf_append(&req->data, value, n);
	} else {
		char shown[32];

		free(value);
		strlcpy_c(shown, name, sizeof(shown));
		keyd_sanitize(shown);
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "line %zu: unknown name '%s' (request, address, format, fingerprint, force, data)", lineno, shown);
	}
	if (bad != NULL) {
		keyd_sanitize(value);
		cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: '%.64s' %s", lineno, value, bad);
	}
	free(value);
	return bad != NULL ? CABLES_ERR_SYNTAX : CABLES_OK;
}

/* Does the request have what its type needs, and nothing else? */
static cables_status
complete(const struct keyd_request *req, struct cables_err *err)
{
	bool addrs = req->naddresses > 0, fmt = req->format != NULL, fpr = req->fingerprint != NULL;
	bool data = req->data.len > 0;

	switch (req->type) {
	case KEYD_LOOKUP:
	case KEYD_CHECK:
		if (!addrs)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s without an address= line", keyd_request_type_name(req->type));
		if (fmt || fpr || data || req->force)
			return cables_fail(err, CABLES_ERR_SYNTAX, "a %s takes address= lines only", keyd_request_type_name(req->type));
		break;
	case KEYD_STATS:
	case KEYD_LIST:
		if (addrs || fmt || fpr || data || req->force)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s takes nothing but request=",
			    req->type == KEYD_STATS ? "stats" : "list");
		break;
	case KEYD_IMPORT:
		if (req->naddresses != 1 || !fmt || !data)
			return cables_fail(err, CABLES_ERR_SYNTAX, "import needs one address=, a format= and data= lines");
		if (fpr)
			return cables_fail(err, CABLES_ERR_SYNTAX, "import takes no fingerprint= (keyd derives it)");
		break;
	case KEYD_DELETE:
		if (req->naddresses != 1)
			return cables_fail(err, CABLES_ERR_SYNTAX, "delete needs one address=");
		if (fmt || data || req->force)
			return cables_fail(err, CABLES_ERR_SYNTAX, "delete takes address= and fingerprint= only");
		break;
	}
	return CABLES_OK;
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
			if (!keyd_request_type_parse(value, &req->type)) {
				keyd_sanitize(value);
				cables_fail(err, CABLES_ERR_SYNTAX,
				    "line %zu: unknown request '%.64s' (lookup, check, stats, import, delete, list)", lineno, value);
				free(value);
				return CABLES_ERR_SYNTAX;
			}
			free(value);
		} else if (field(req, lineno, name, value, err) != CABLES_OK) {
			return CABLES_ERR_SYNTAX;
		}
	}
	if (!have_type)
		return cables_fail(err, CABLES_ERR_SYNTAX, "no request= line");
	return complete(req, err);
}

/* A reply: a key= and a result= line per address at most, for KEYD_ADDRESSES_MAX addresses. */
#define REPLY_MAX (4 * 1024 * 1024)

cables_status
keyd_call(const char *socket_path, const struct buf *request, unsigned long timeout_ms, struct buf *reply,
    struct cables_err *err)
{
	long long deadline = monotonic_ms() + (long long)timeout_ms;
	size_t sent = 0;
	int fd;
	cables_status st = CABLES_OK;

	if ((fd = unix_connect(socket_path, SOCK_NONBLOCK)) < 0) {
		if (errno == ENAMETOOLONG)
			return cables_fail(err, CABLES_ERR_ARG, "KeydSocket %s: path too long", socket_path);
		return cables_fail(err, errno == ENOENT || errno == ECONNREFUSED ? CABLES_ERR_NOTFOUND : CABLES_ERR_IO,
		    "cables-keyd at %s: %s", socket_path, strerror(errno));
	}
	/* A reply ends at its empty line: "\n" alone is a whole reply (list of an empty store). */
	while (!(reply->len == 1 && reply->data[0] == '\n') &&
	    (reply->len < 2 || reply->data[reply->len - 1] != '\n' || reply->data[reply->len - 2] != '\n')) {
		struct pollfd p = { fd, sent < request->len ? POLLOUT : POLLIN, 0 };
		long long left = deadline - monotonic_ms();
		char chunk[4096];
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd did not answer within %lu ms", timeout_ms);
			break;
		}
		if (sent < request->len) {
			if ((r = write(fd, request->data + sent, request->len - sent)) < 0 && errno != EAGAIN && errno != EINTR) {
				st = cables_fail(err, CABLES_ERR_IO, "cables-keyd: write: %s", strerror(errno));
				break;
			}
			sent += r > 0 ? (size_t)r : 0;
			continue;
		}
		if ((r = read(fd, chunk, sizeof(chunk))) == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd closed the connection");
			break;
		}
		if (r > 0)
			buf_append(reply, chunk, (size_t)r);
		if (reply->len > REPLY_MAX) {
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd: reply larger than 4 MB");
			break;
		}
	}
	close(fd);
	return st;
}

/* ---- The reply to a lookup ---- */

const char *keyd_outcome_name(enum keyd_outcome o) { return name_of(outcome_names, NAMES(outcome_names), (int)o); }
const char *keyd_format_name(enum keyd_format f) { return name_of(format_names, NAMES(format_names), (int)f); }
const char *keyd_source_name(enum keyd_source s) { return name_of(source_names, NAMES(source_names), (int)s); }
const char *keyd_trust_name(enum keyd_trust t) { return name_of(trust_names, NAMES(trust_names), (int)t); }

bool
keyd_outcome_parse(const char *word, enum keyd_outcome *out)
{
	int v;

	return parse_word(outcome_names, NAMES(outcome_names), word, &v) && (*out = (enum keyd_outcome)v, true);
}

bool
keyd_format_parse(const char *word, enum keyd_format *out)
{
	int v;

	return parse_word(format_names, NAMES(format_names), word, &v) && (*out = (enum keyd_format)v, true);
}

bool
keyd_source_parse(const char *word, enum keyd_source *out)
{
	int v;

	return parse_word(source_names, NAMES(source_names), word, &v) && (*out = (enum keyd_source)v, true);
}

bool
keyd_trust_parse(const char *word, enum keyd_trust *out)
{
	int v;

	return parse_word(trust_names, NAMES(trust_names), word, &v) && (*out = (enum keyd_trust)v, true);
}

enum keyd_trust
keyd_trust_of(enum keyd_source s)
{
	return s == KEYD_SOURCE_DNS_DNSSEC ? KEYD_TRUST_DNSSEC : s == KEYD_SOURCE_DNS_INSECURE ? KEYD_TRUST_INSECURE :
	    KEYD_TRUST_LOCAL;
}

void
keyd_key_format(struct buf *out, const struct keyd_key *k)
{
	buf_printf(out, "key=%s format=%s source=%s trust=%s fingerprint=%s expires=%lld\n", k->address,
	    keyd_format_name(k->format), keyd_source_name(k->source), keyd_trust_name(k->trust), k->fingerprint,
	    k->expires);
}

void
keyd_result_format(struct buf *out, const char *address, enum keyd_outcome o, const char *reason)
{
	keyd_result_encrypting_format(out, address, o, KEYD_ENCRYPTING_NO, 0, reason);
}

static const char *const encrypting_names[] = { "no", "remembered", "published" };

const char *
keyd_encrypting_name(enum keyd_encrypting e)
{
	return (size_t)e < sizeof(encrypting_names) / sizeof(encrypting_names[0]) ? encrypting_names[e] : "?";
}

bool
keyd_encrypting_parse(const char *word, enum keyd_encrypting *out)
{
	/* "no" is never written: only the other two are words of the wire. */
	for (size_t i = 1; i < sizeof(encrypting_names) / sizeof(encrypting_names[0]); i++)
		if (strcmp(word, encrypting_names[i]) == 0) {
			*out = (enum keyd_encrypting)i;
			return true;
		}
	return false;
}

void
keyd_result_encrypting_format(struct buf *out, const char *address, enum keyd_outcome o, enum keyd_encrypting e,
    long long since, const char *reason)
{
	char *clean;

	buf_printf(out, "result=%s %s", address, keyd_outcome_name(o));
	if (e == KEYD_ENCRYPTING_REMEMBERED)
		buf_printf(out, " encrypting=%s since=%lld", keyd_encrypting_name(e), since);
	else if (e != KEYD_ENCRYPTING_NO)
		buf_printf(out, " encrypting=%s", keyd_encrypting_name(e));
	if (reason == NULL || reason[0] == '\0') {
		buf_printf(out, "\n");
		return;
	}
	keyd_sanitize(clean = xstrdup(reason));
	buf_printf(out, " reason=%s\n", clean);
	free(clean);
}

/* "NAME=VALUE" at *p (a token of a key= line) into value; false when it is not NAME=. */
static bool
token(char **p, const char *name, const char **value)
{
	size_t n = strlen(name);
	char *t = *p, *sp;

	if (t == NULL || strncmp(t, name, n) != 0 || t[n] != '=')
		return false;
	*value = t + n + 1;
	sp = strchr(t, ' ');
	if (sp != NULL)
		*sp++ = '\0';
	*p = sp;
	return true;
}

/* One key= line (its text after "key=", modified) into k. */
static bool
parse_key(char *line, struct keyd_key *k)
{
	const char *format, *source, *trust, *fpr, *expires;
	char *p = strchr(line, ' '), *end;
	size_t n;

	if (p == NULL || (size_t)(p - line) >= sizeof(k->address))
		return false;
	*p++ = '\0';
	strlcpy_c(k->address, line, sizeof(k->address));
	if (!token(&p, "format", &format) || !token(&p, "source", &source) || !token(&p, "trust", &trust) ||
	    !token(&p, "fingerprint", &fpr) || !token(&p, "expires", &expires) || p != NULL)
		return false;
	n = strlen(fpr);
	if (n == 0 || n >= sizeof(k->fingerprint) || strspn(fpr, "0123456789abcdefABCDEF") != n)
		return false;
	strlcpy_c(k->fingerprint, fpr, sizeof(k->fingerprint));
	k->expires = strtoll(expires, &end, 10);
	return *expires != '\0' && *end == '\0' && keyd_format_parse(format, &k->format) &&
	    keyd_source_parse(source, &k->source) && keyd_trust_parse(trust, &k->trust);
}

/* One result= line (its text after "result=", modified) into r. */
static bool
parse_result(char *line, struct keyd_result *r)
{
	char *word = strchr(line, ' '), *rest;

	if (word == NULL || word == line || (size_t)(word - line) >= sizeof(r->address))
		return false;
	*word++ = '\0';
	strlcpy_c(r->address, line, sizeof(r->address));
	if ((rest = strchr(word, ' ')) != NULL)
		*rest++ = '\0';
	if (!keyd_outcome_parse(word, &r->outcome))
		return false;
	if (rest != NULL && strncmp(rest, "encrypting=", 11) == 0) {
		const char *value, *since;
		char *end;

		if (!token(&rest, "encrypting", &value) || !keyd_encrypting_parse(value, &r->encrypting) ||
		    r->outcome == KEYD_OUTCOME_FOUND)
			return false;
		if (r->encrypting == KEYD_ENCRYPTING_REMEMBERED) {
			if (!token(&rest, "since", &since))
				return false;
			r->since = strtoll(since, &end, 10);
			if (*since == '\0' || *end != '\0' || r->since < 0)
				return false;
		}
	}
	if (rest != NULL) {
		if (strncmp(rest, "reason=", 7) != 0)
			return false;
		strlcpy_c(r->reason, rest + 7, sizeof(r->reason));
	}
	return true;
}

void
keyd_lookup_reply_release(struct keyd_lookup_reply *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->results[i].keys);
	free(r->results);
	r->results = NULL;
	r->n = 0;
}

cables_status
keyd_lookup_reply_parse(const char *text, size_t len, struct keyd_lookup_reply *out, struct cables_err *err)
{
	struct keyd_key *pending = NULL;
	size_t npending = 0, room = 0, lineno = 0;
	char *copy = xstrndup(text, len), *line, *save = NULL;
	cables_status st = CABLES_OK;

	memset(out, 0, sizeof(*out));
	if (strncmp(copy, "error=", 6) == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s",
		    (int)strcspn(copy + 6, "\n"), copy + 6);
		goto out;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (strncmp(line, "key=", 4) == 0) {
			pending = xreallocarray(pending, npending + 1, sizeof(*pending));
			memset(&pending[npending], 0, sizeof(*pending));
			if (!parse_key(line + 4, &pending[npending++]))
				break;
		} else if (strncmp(line, "result=", 7) == 0) {
			struct keyd_result *r;

			if (out->n == room) {
				room = room == 0 ? 16 : 2 * room;
				out->results = xreallocarray(out->results, room, sizeof(*out->results));
			}
			r = &out->results[out->n++];
			memset(r, 0, sizeof(*r));
			r->keys = pending;
			r->nkeys = npending;
			pending = NULL;
			npending = 0;
			if (!parse_result(line + 7, r))
				break;
		} else {
			break;
		}
	}
	if (line != NULL)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: reply line %zu is not a key= or result= line as "
		    "keydproto.h says", lineno);
	else if (npending > 0)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: %zu key= lines without their result= line", npending);
out:
	free(pending);
	free(copy);
	return st;
}

/* ---- The reply to a list ---- */

void
keyd_stored_format(struct buf *out, const struct keyd_stored *k)
{
	buf_printf(out, "key=%s format=%s source=%s fingerprint=%s not_before=%lld expires=%lld private=%s\n", k->address,
	    keyd_format_name(k->format), keyd_source_name(k->source), k->fingerprint, k->not_before, k->expires,
	    k->private_key ? "yes" : "no");
}

static bool
parse_number(const char *text, long long *out)
{
	char *end;

	*out = strtoll(text, &end, 10);
	return *text != '\0' && *end == '\0';
}

/* One list line (its text after "key=", modified) into k. */
static bool
parse_stored(char *line, struct keyd_stored *k)
{
	const char *format, *source, *fpr, *nb, *na, *priv;
	char *p = strchr(line, ' ');
	size_t n;

	if (p == NULL || p == line || (size_t)(p - line) >= sizeof(k->address))
		return false;
	*p++ = '\0';
	strlcpy_c(k->address, line, sizeof(k->address));
	if (!token(&p, "format", &format) || !token(&p, "source", &source) || !token(&p, "fingerprint", &fpr) ||
	    !token(&p, "not_before", &nb) || !token(&p, "expires", &na) || !token(&p, "private", &priv) || p != NULL)
		return false;
	n = strlen(fpr);
	if (n == 0 || n >= sizeof(k->fingerprint) || strspn(fpr, "0123456789abcdefABCDEF") != n)
		return false;
	strlcpy_c(k->fingerprint, fpr, sizeof(k->fingerprint));
	if (strcmp(priv, "yes") != 0 && strcmp(priv, "no") != 0)
		return false;
	k->private_key = strcmp(priv, "yes") == 0;
	return parse_number(nb, &k->not_before) && parse_number(na, &k->expires) &&
	    keyd_format_parse(format, &k->format) && keyd_source_parse(source, &k->source);
}

/*
 * A reply of lines "PREFIX=..." only, each parsed by parse into the next
 * element (size bytes, zeroed first) of a growing array: *arr and *n.
 * An error= reply is keyd's refusal; any other line is a syntax error
 * naming its number and what (what the lines should be).
 */
static cables_status
parse_uniform_reply(const char *text, size_t len, const char *prefix, bool (*parse)(char *, void *),
    size_t size, void **arr, size_t *n, const char *what, struct cables_err *err)
{
	char *copy = xstrndup(text, len), *line, *save = NULL;
	size_t room = 0, lineno = 0, plen = strlen(prefix);
	cables_status st = CABLES_OK;

	*arr = NULL;
	*n = 0;
	if (strncmp(copy, "error=", 6) == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s",
		    (int)strcspn(copy + 6, "\n"), copy + 6);
		free(copy);
		return st;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *elem;

		lineno++;
		if (*n == room) {
			room = room == 0 ? 16 : 2 * room;
			*arr = xreallocarray(*arr, room, size);
		}
		elem = (char *)*arr + *n * size;
		memset(elem, 0, size);
		if (strncmp(line, prefix, plen) != 0 || !parse(line + plen, elem)) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: reply line %zu is not %s", lineno, what);
			break;
		}
		(*n)++;
	}
	free(copy);
	return st;
}

void
keyd_list_reply_release(struct keyd_list_reply *r)
{
	free(r->keys);
	r->keys = NULL;
	r->n = 0;
}

static bool
parse_stored_elem(char *text, void *elem)
{
	return parse_stored(text, elem);
}

cables_status
keyd_list_reply_parse(const char *text, size_t len, struct keyd_list_reply *out, struct cables_err *err)
{
	void *keys;
	cables_status st;

	memset(out, 0, sizeof(*out));
	st = parse_uniform_reply(text, len, "key=", parse_stored_elem, sizeof(*out->keys), &keys, &out->n,
	    "a key= line of a list", err);
	out->keys = keys;
	return st;
}

/* ---- The reply to a check ---- */

const char *
keyd_check_state_name(enum keyd_check_state st)
{
	return name_of(check_names, NAMES(check_names), (int)st);
}

bool
keyd_check_state_parse(const char *word, enum keyd_check_state *out)
{
	int v;

	return parse_word(check_names, NAMES(check_names), word, &v) && (*out = (enum keyd_check_state)v, true);
}

void
keyd_check_format(struct buf *out, const struct keyd_check *c)
{
	char *clean;

	buf_printf(out, "check=%s %s", c->address, keyd_check_state_name(c->state));
	if (c->retry > 0)
		buf_printf(out, " retry=%lld", c->retry);
	if (c->reason[0] != '\0') {
		keyd_sanitize(clean = xstrdup(c->reason));
		buf_printf(out, " reason=%s", clean);
		free(clean);
	}
	buf_appends(out, "\n");
}

/* One check= line (its text after "check=", modified) into c. */
static bool
parse_check(char *line, struct keyd_check *c)
{
	char *word = strchr(line, ' '), *rest, *end;

	/* keyd sanitizes what it sends: a control character is a peer that breaks the protocol. */
	for (const char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			return false;
	if (word == NULL || word == line || (size_t)(word - line) >= sizeof(c->address))
		return false;
	*word++ = '\0';
	strlcpy_c(c->address, line, sizeof(c->address));
	if ((rest = strchr(word, ' ')) != NULL)
		*rest++ = '\0';
	if (!keyd_check_state_parse(word, &c->state))
		return false;
	if (rest != NULL && strncmp(rest, "retry=", 6) == 0) {
		char *sp = strchr(rest, ' ');

		if (sp != NULL)
			*sp++ = '\0';
		/* Digits only, not 0 (a formatter leaves 0 out), and no more than a year. */
		if (rest[6] == '\0' || strspn(rest + 6, "0123456789") != strlen(rest + 6))
			return false;
		c->retry = strtoll(rest + 6, &end, 10);
		if (c->retry <= 0 || c->retry > 366LL * 86400)
			return false;
		rest = sp;
	}
	if (rest != NULL) {
		if (strncmp(rest, "reason=", 7) != 0 || rest[7] == '\0')
			return false;
		strlcpy_c(c->reason, rest + 7, sizeof(c->reason));
	}
	return true;
}

void
keyd_check_reply_release(struct keyd_check_reply *r)
{
	free(r->checks);
	r->checks = NULL;
	r->n = 0;
}

static bool
parse_check_elem(char *text, void *elem)
{
	return parse_check(text, elem);
}

cables_status
keyd_check_reply_parse(const char *text, size_t len, struct keyd_check_reply *out, struct cables_err *err)
{
	void *checks;
	cables_status st;

	memset(out, 0, sizeof(*out));
	st = parse_uniform_reply(text, len, "check=", parse_check_elem, sizeof(*out->checks), &checks, &out->n,
	    "a check= line as keydproto.h says", err);
	out->checks = checks;
	return st;
}

/* ---- Requests, formatted (the client side) ---- */

bool
keyd_address_takes(const char *addr)
{
	return strlen(addr) <= KEYD_LINE_MAX - (sizeof("address=") - 1) && addr_valid(addr);
}

/* An address= line for addr onto req; CABLES_ERR_ARG for one keyd would refuse. */
static cables_status
address_line(struct buf *req, const char *addr, struct cables_err *err)
{
	char shown[65];

	if (!keyd_address_takes(addr)) {
		strlcpy_c(shown, addr, sizeof(shown));
		keyd_sanitize(shown);
		return cables_fail(err, CABLES_ERR_ARG, "'%s%s' is not an email address cables-keyd takes", shown,
		    strlen(addr) >= sizeof(shown) ? "..." : "");
	}
	buf_printf(req, "address=%s\n", addr);
	return CABLES_OK;
}

/* req (a request of type), finished with its empty line, onto out if keyd takes a request that large; req is freed. */
static cables_status
request_done(struct buf *out, struct buf *req, enum keyd_request_type type, struct cables_err *err)
{
	cables_status st = CABLES_OK;

	buf_appends(req, "\n");
	if (req->len > KEYD_REQUEST_MAX)
		st = cables_fail(err, CABLES_ERR_ARG, "an %s request of %zu bytes is larger than cables-keyd takes (%s)",
		    keyd_request_type_name(type), req->len, KEYD_REQUEST_MAX_S);
	else
		buf_append(out, req->data, req->len);
	buf_release(req);
	return st;
}

/* A request of type (lookup, check) for the n addresses. */
static cables_status
addresses_request_format(struct buf *out, enum keyd_request_type type, const char *const *addrs, size_t n,
    struct cables_err *err)
{
	const char *name = keyd_request_type_name(type);
	struct buf req;

	if (n == 0)
		return cables_fail(err, CABLES_ERR_ARG, "a %s needs at least one address", name);
	if (n > KEYD_ADDRESSES_MAX)
		return cables_fail(err, CABLES_ERR_ARG, "a %s of %zu addresses (" KEYD_ADDRESSES_MAX_S " at most)", name, n);
	buf_init(&req);
	buf_printf(&req, "request=%s\n", name);
	for (size_t i = 0; i < n; i++) {
		if (address_line(&req, addrs[i], err) != CABLES_OK) {
			buf_release(&req);
			return CABLES_ERR_ARG;
		}
	}
	return request_done(out, &req, type, err);
}

cables_status
keyd_lookup_request_format(struct buf *out, const char *const *addrs, size_t n, struct cables_err *err)
{
	return addresses_request_format(out, KEYD_LOOKUP, addrs, n, err);
}

cables_status
keyd_check_request_format(struct buf *out, const char *const *addrs, size_t n, struct cables_err *err)
{
	return addresses_request_format(out, KEYD_CHECK, addrs, n, err);
}

/* The data= lines of an import: the key in base64, 76 characters a line. */
#define DATA_LINE 76

cables_status
keyd_import_request_format(struct buf *out, const char *address, enum keyd_format format, bool force,
    const unsigned char *key, size_t len, struct cables_err *err)
{
	struct buf req;
	char *b64;
	size_t n;

	if (strcmp(keyd_format_name(format), "?") == 0)
		return cables_fail(err, CABLES_ERR_ARG, "an import of a key in format %d (smime, pgp)", (int)format);
	if (len == 0)
		return cables_fail(err, CABLES_ERR_ARG, "an import needs a key");
	/* Larger keys would not fit a request anyway (and EVP_EncodeBlock counts in int). */
	if (len > KEYD_REQUEST_MAX)
		return cables_fail(err, CABLES_ERR_ARG, "a key of %zu bytes is larger than cables-keyd takes (%s)", len,
		    KEYD_REQUEST_MAX_S);
	buf_init(&req);
	buf_appends(&req, "request=import\n");
	if (address_line(&req, address, err) != CABLES_OK) {
		buf_release(&req);
		return CABLES_ERR_ARG;
	}
	buf_printf(&req, "format=%s\nforce=%s\n", keyd_format_name(format), force ? "yes" : "no");
	b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	n = (size_t)EVP_EncodeBlock((unsigned char *)b64, key, (int)len);
	for (size_t off = 0; off < n; off += DATA_LINE)
		buf_printf(&req, "data=%.*s\n", DATA_LINE, b64 + off);
	free(b64);
	return request_done(out, &req, KEYD_IMPORT, err);
}

cables_status
keyd_delete_request_format(struct buf *out, const char *address, const char *fingerprint, struct cables_err *err)
{
	struct buf req;
	size_t n = fingerprint != NULL ? strlen(fingerprint) : 0;

	if (fingerprint != NULL && (n < 8 || n > 64 || strspn(fingerprint, "0123456789abcdefABCDEF") != n))
		return cables_fail(err, CABLES_ERR_ARG, "a delete by a fingerprint that is not a hex prefix of 8 to 64 digits");
	buf_init(&req);
	buf_appends(&req, "request=delete\n");
	if (address_line(&req, address, err) != CABLES_OK) {
		buf_release(&req);
		return CABLES_ERR_ARG;
	}
	if (fingerprint != NULL)
		buf_printf(&req, "fingerprint=%s\n", fingerprint);
	return request_done(out, &req, KEYD_DELETE, err);
}

void
keyd_list_request_format(struct buf *out)
{
	buf_appends(out, "request=list\n\n");
}

void
keyd_stats_request_format(struct buf *out)
{
	buf_appends(out, "request=stats\n\n");
}

/* ---- The replies to import and delete; errors ---- */

void
keyd_error_format(struct buf *out, const char *fmt, ...)
{
	char reason[KEYD_LINE_MAX - 6];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	keyd_sanitize(reason);
	buf_printf(out, "error=%s\n", reason);
}

void
keyd_import_reply_format(struct buf *out, const struct keyd_import_reply *r)
{
	buf_printf(out, "stored=%s format=%s fingerprint=%s expires=%lld\n", r->address, keyd_format_name(r->format),
	    r->fingerprint, r->expires);
}

void
keyd_delete_reply_format(struct buf *out, size_t deleted)
{
	buf_printf(out, "deleted=%zu\n", deleted);
}

/*
 * The one line of a reply that has one (with or without the empty line
 * after it), into a copy the caller frees; NULL after an error= reply or
 * a reply of any other shape.  what names the request for the message.
 */
static char *
one_line(const char *text, size_t len, const char *what, struct cables_err *err)
{
	char *copy;
	size_t n;

	if (len >= 6 && strncmp(text, "error=", 6) == 0) {
		n = len - 6;
		copy = xstrndup(text + 6, n);
		copy[strcspn(copy, "\n")] = '\0';
		cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %s", copy);
		free(copy);
		return NULL;
	}
	n = len;
	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (n == 0 || n > KEYD_LINE_MAX || memchr(text, '\n', n) != NULL || memchr(text, '\0', n) != NULL) {
		cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: the reply to %s is not one line as keydproto.h says",
		    what);
		return NULL;
	}
	return xstrndup(text, n);
}

cables_status
keyd_import_reply_parse(const char *text, size_t len, struct keyd_import_reply *out, struct cables_err *err)
{
	const char *format, *fpr, *expires;
	char *line, *p;
	size_t n;
	bool ok;

	memset(out, 0, sizeof(*out));
	if ((line = one_line(text, len, "an import", err)) == NULL)
		return CABLES_ERR_SYNTAX;
	ok = strncmp(line, "stored=", 7) == 0 && (p = strchr(line + 7, ' ')) != NULL && p != line + 7 &&
	    (size_t)(p - line - 7) < sizeof(out->address);
	if (ok) {
		*p++ = '\0';
		strlcpy_c(out->address, line + 7, sizeof(out->address));
		ok = token(&p, "format", &format) && token(&p, "fingerprint", &fpr) && token(&p, "expires", &expires) &&
		    p == NULL && keyd_format_parse(format, &out->format) && parse_number(expires, &out->expires);
	}
	if (ok) {
		n = strlen(fpr);
		ok = n > 0 && n < sizeof(out->fingerprint) && strspn(fpr, "0123456789abcdefABCDEF") == n &&
		    addr_valid(out->address);
	}
	if (ok)
		strlcpy_c(out->fingerprint, fpr, sizeof(out->fingerprint));
	free(line);
	if (!ok)
		return cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: the reply to an import is not "
		    "\"stored=ADDRESS format=F fingerprint=FPR expires=T\"");
	return CABLES_OK;
}

cables_status
keyd_delete_reply_parse(const char *text, size_t len, size_t *deleted, struct cables_err *err)
{
	unsigned long long v;
	char *line, *end;
	bool ok;

	*deleted = 0;
	if ((line = one_line(text, len, "a delete", err)) == NULL)
		return CABLES_ERR_SYNTAX;
	/* Digits only: strtoull would take a sign or blanks. */
	ok = strncmp(line, "deleted=", 8) == 0 && line[8] != '\0' && strspn(line + 8, "0123456789") == strlen(line + 8);
	if (ok) {
		errno = 0;
		v = strtoull(line + 8, &end, 10);
		ok = errno == 0 && *end == '\0' && v <= SIZE_MAX;
		*deleted = ok ? (size_t)v : 0;
	}
	free(line);
	if (!ok)
		return cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: the reply to a delete is not \"deleted=N\"");
	return CABLES_OK;
}

void
keyd_stats_metrics_format(struct buf *out, const char *text, size_t len)
{
	const char *p = text, *end;

	if (len == 0)
		return;	/* text may be NULL (an empty struct buf) */
	end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0 && p[0] != '#') {
			buf_appends(out, "metric=");
			buf_append(out, p, n);
			buf_appends(out, "\n");
		}
		p += n + 1;
	}
}

/* "name{labels} value" or "name value": a Prometheus sample as keyd writes them (no timestamps). */
static bool
sample_valid(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
		i++;
	if (i < n && s[i] == '{') {
		const char *close = memchr(s + i, '}', n - i);

		if (close == NULL)
			return false;
		/* Labels as printable ASCII only: no control byte reaches a terminal (cables-keyctl stats). */
		for (i++; s + i < close; i++)
			if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '{')
				return false;
		i = (size_t)(close - s) + 1;
	}
	if (i >= n || s[i] != ' ')
		return false;
	for (i++; i < n && (isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' || s[i] == '+' || s[i] == '-');
	    i++)
		digits++;
	return digits > 0 && i == n;
}

cables_status
keyd_stats_reply_parse(const char *text, size_t len, struct buf *metrics, struct cables_err *err)
{
	const char *p = text, *end;
	size_t lineno = 0;

	if (len == 0)
		return CABLES_OK;	/* text may be NULL */
	end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char *eq = memchr(p, '=', n);

		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;	/* the reply's end */
		if (n > 6 && memcmp(p, "error=", 6) == 0)
			return cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s", (int)(n - 6),
			    p + 6);
		if (n > 7 && memcmp(p, "metric=", 7) == 0) {
			if (!sample_valid(p + 7, n - 7))
				return cables_fail(err, CABLES_ERR_SYNTAX, "stats reply line %zu is not a metric sample",
				    lineno);
			buf_append(metrics, p + 7, n - 7);
			buf_appends(metrics, "\n");
		} else {
			size_t k = 0;

			if (eq == NULL || eq == p)
				return cables_fail(err, CABLES_ERR_SYNTAX, "stats reply line %zu is not name=value", lineno);
			for (const char *q = eq + 1; q < p + n; q++, k++)
				if (!isdigit((unsigned char)*q))
					return cables_fail(err, CABLES_ERR_SYNTAX, "stats reply line %zu: not a number",
					    lineno);
			if (k == 0)
				return cables_fail(err, CABLES_ERR_SYNTAX, "stats reply line %zu: no value", lineno);
		}
		p += (nl != NULL ? (size_t)(nl - p) : (size_t)(end - p)) + 1;
	}
	return CABLES_OK;
}
