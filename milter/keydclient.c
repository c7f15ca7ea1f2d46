/* keydclient - asking cables-keyd; see keydclient.h. */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keydclient.h"
#include "util.h"

#define REPLY_MAX (256 * 1024)

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cables_status
keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_answer *answers, char *why, size_t why_len, struct cables_err *err)
{
	struct sockaddr_un sun;
	long long deadline = now_ms() + (long long)timeout_ms;
	struct buf req, reply;
	size_t sent = 0;
	int fd;
	cables_status st = CABLES_OK;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++)
		answers[i] = KEYD_ANSWER_NONE;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path))
		return cables_fail(err, CABLES_ERR_ARG, "KeydSocket %s: path too long", socket_path);
	strlcpy_c(sun.sun_path, socket_path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return cables_fail(err, CABLES_ERR_IO, "cables-keyd: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return cables_fail(err, CABLES_ERR_IO, "cables-keyd at %s: %s", socket_path, strerror(errno));
	}
	buf_init(&req);
	buf_init(&reply);
	buf_appends(&req, "request=lookup\n");
	for (size_t i = 0; i < n; i++)
		buf_printf(&req, "address=%s\n", addrs[i]);
	buf_appends(&req, "\n");
	/* Send the request and read the reply up to its empty line, within the deadline. */
	while (reply.len < 2 || reply.data[reply.len - 1] != '\n' || reply.data[reply.len - 2] != '\n') {
		struct pollfd p = { fd, sent < req.len ? POLLOUT : POLLIN, 0 };
		long long left = deadline - now_ms();
		char chunk[4096];
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd did not answer within %lu ms", timeout_ms);
			goto out;
		}
		if (sent < req.len) {
			if ((r = write(fd, req.data + sent, req.len - sent)) < 0 && errno != EAGAIN && errno != EINTR) {
				st = cables_fail(err, CABLES_ERR_IO, "cables-keyd: write: %s", strerror(errno));
				goto out;
			}
			sent += r > 0 ? (size_t)r : 0;
			continue;
		}
		if ((r = read(fd, chunk, sizeof(chunk))) == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			st = cables_fail(err, CABLES_ERR_IO, "cables-keyd closed the connection");
			goto out;
		}
		if (r > 0)
			buf_append(&reply, chunk, (size_t)r);
		if (reply.len > REPLY_MAX) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: reply larger than 256 KB");
			goto out;
		}
	}
	if (strncmp(reply.data, "error=", 6) == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s",
		    (int)strcspn(reply.data + 6, "\n"), reply.data + 6);
		goto out;
	}
	/* "result=ADDRESS found|none|tempfail [reason=...]", in the order asked. */
	for (size_t i = 0, off = 0; i < n; i++) {
		char *line = strstr(reply.data + off, "result="), *word;
		size_t len;

		if (line == NULL) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: %zu results for %zu addresses", i, n);
			goto out;
		}
		len = strcspn(line, "\n");
		off = (size_t)(line - reply.data) + len;
		line[len] = '\0';
		word = strchr(line + 7, ' ');
		word = word != NULL ? word + 1 : "";
		if (strncmp(word, "found", 5) == 0 && (word[5] == '\0' || word[5] == ' ')) {
			answers[i] = KEYD_ANSWER_FOUND;
		} else if (strncmp(word, "tempfail", 8) == 0 && (word[8] == '\0' || word[8] == ' ')) {
			answers[i] = KEYD_ANSWER_TEMPFAIL;
			if (why[0] == '\0')
				snprintf(why, why_len, "%s", line + 7);
		}
		line[len] = '\n';
	}
out:
	close(fd);
	buf_release(&req);
	buf_release(&reply);
	return st;
}
