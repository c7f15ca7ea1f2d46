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
