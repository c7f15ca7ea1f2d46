/* keydproto - the cables-keyd request parser; see keydproto.h. */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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

static const struct {
	const char *name;
	enum keyd_request_type type;
} request_names[] = {
	{ "lookup", KEYD_LOOKUP }, { "stats", KEYD_STATS }, { "import", KEYD_IMPORT }, { "delete", KEYD_DELETE },
	{ "list", KEYD_LIST },
};

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
		if (!addrs)
			return cables_fail(err, CABLES_ERR_SYNTAX, "lookup without an address= line");
		if (fmt || fpr || data || req->force)
			return cables_fail(err, CABLES_ERR_SYNTAX, "a lookup takes address= lines only");
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
			bool known = false;

			if (have_type) {
				free(value);
				return cables_fail(err, CABLES_ERR_SYNTAX, "line %zu: request given twice", lineno);
			}
			have_type = true;
			for (size_t i = 0; i < sizeof(request_names) / sizeof(request_names[0]) && !known; i++)
				if (strcmp(value, request_names[i].name) == 0) {
					req->type = request_names[i].type;
					known = true;
				}
			if (!known) {
				keyd_sanitize(value);
				cables_fail(err, CABLES_ERR_SYNTAX,
				    "line %zu: unknown request '%.64s' (lookup, stats, import, delete, list)", lineno, value);
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
	struct sockaddr_un sun;
	long long deadline = monotonic_ms() + (long long)timeout_ms;
	size_t sent = 0;
	int fd;
	cables_status st = CABLES_OK;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path))
		return cables_fail(err, CABLES_ERR_ARG, "KeydSocket %s: path too long", socket_path);
	strlcpy_c(sun.sun_path, socket_path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return cables_fail(err, CABLES_ERR_IO, "cables-keyd: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		st = cables_fail(err, errno == ENOENT || errno == ECONNREFUSED ? CABLES_ERR_NOTFOUND : CABLES_ERR_IO,
		    "cables-keyd at %s: %s", socket_path, strerror(errno));
		close(fd);
		return st;
	}
	while (reply->len < 2 || reply->data[reply->len - 1] != '\n' || reply->data[reply->len - 2] != '\n') {
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

static const char *const outcome_names[] = { "found", "none", "tempfail", "reject" };
static const char *const format_names[] = { "smime", "pgp" };
static const char *const source_names[] = { "generated", "imported", "harvested", "dns-dnssec", "dns-insecure", "peer",
	"wkd" };
static const char *const trust_names[] = { "local", "dnssec", "insecure" };

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
	char *clean;

	if (reason == NULL || reason[0] == '\0') {
		buf_printf(out, "result=%s %s\n", address, keyd_outcome_name(o));
		return;
	}
	keyd_sanitize(clean = xstrdup(reason));
	buf_printf(out, "result=%s %s reason=%s\n", address, keyd_outcome_name(o), clean);
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
	if ((rest = strchr(word, ' ')) != NULL) {
		*rest++ = '\0';
		if (strncmp(rest, "reason=", 7) != 0)
			return false;
		strlcpy_c(r->reason, rest + 7, sizeof(r->reason));
	}
	return keyd_outcome_parse(word, &r->outcome);
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

void
keyd_list_reply_release(struct keyd_list_reply *r)
{
	free(r->keys);
	r->keys = NULL;
	r->n = 0;
}

cables_status
keyd_list_reply_parse(const char *text, size_t len, struct keyd_list_reply *out, struct cables_err *err)
{
	char *copy = xstrndup(text, len), *line, *save = NULL;
	size_t room = 0, lineno = 0;
	cables_status st = CABLES_OK;

	memset(out, 0, sizeof(*out));
	if (strncmp(copy, "error=", 6) == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s",
		    (int)strcspn(copy + 6, "\n"), copy + 6);
		free(copy);
		return st;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (out->n == room) {
			room = room == 0 ? 16 : 2 * room;
			out->keys = xreallocarray(out->keys, room, sizeof(*out->keys));
		}
		memset(&out->keys[out->n], 0, sizeof(out->keys[0]));
		if (strncmp(line, "key=", 4) != 0 || !parse_stored(line + 4, &out->keys[out->n])) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: reply line %zu is not a key= line of a list",
			    lineno);
			break;
		}
		out->n++;
	}
	free(copy);
	return st;
}
