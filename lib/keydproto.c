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

#define REPLY_MAX (256 * 1024)

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cables_status
keyd_call(const char *socket_path, const struct buf *request, unsigned long timeout_ms, struct buf *reply,
    struct cables_err *err)
{
	struct sockaddr_un sun;
	long long deadline = now_ms() + (long long)timeout_ms;
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
		st = cables_fail(err, CABLES_ERR_IO, "cables-keyd at %s: %s", socket_path, strerror(errno));
		close(fd);
		return st;
	}
	while (reply->len < 2 || reply->data[reply->len - 1] != '\n' || reply->data[reply->len - 2] != '\n') {
		struct pollfd p = { fd, sent < request->len ? POLLOUT : POLLIN, 0 };
		long long left = deadline - now_ms();
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
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd: reply larger than 256 KB");
			break;
		}
	}
	close(fd);
	return st;
}
