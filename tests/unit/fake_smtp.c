/* fake_smtp - a scripted SMTP server for the unit tests; see fake_smtp.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_smtp.h"

static const char *const default_reply[SMTP_STEPS] = {
	[SMTP_GREETING] = "220 fake.test ESMTP\r\n",
	[SMTP_EHLO] = FAKE_SMTP_EHLO_FULL,
	[SMTP_MAIL] = "250 2.1.0 Ok\r\n",
	[SMTP_RCPT] = "250 2.1.5 Ok\r\n",
	[SMTP_DATA] = "354 End data with <CR><LF>.<CR><LF>\r\n",
	[SMTP_DOT] = NULL,	/* "250 2.0.0 Ok: queued as FAKE<n>", n the session's number */
	[SMTP_QUIT] = "221 2.0.0 Bye\r\n",
};

/* One accepted connection, read line by line; stop wakes any wait. */
struct conn {
	int fd;
	int stop;
	char in[4096];
	size_t have;
};

/* A line (up to and including LF) appended to line: 1, or 0 at end of input, -1 when told to stop. */
static int
conn_line(struct conn *c, struct buf *line)
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->have);
		struct pollfd p[2] = { { c->fd, POLLIN, 0 }, { c->stop, POLLIN, 0 } };
		ssize_t r;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in) + 1;

			buf_append(line, c->in, n);
			memmove(c->in, c->in + n, c->have - n);
			c->have -= n;
			return 1;
		}
		/* A line longer than the buffer arrives in pieces. */
		buf_append(line, c->in, c->have);
		c->have = 0;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents != 0)
			return -1;
		r = read(c->fd, c->in, sizeof(c->in));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		c->have = (size_t)r;
	}
}

/* Answer step as scripted: 1 answered, 0 the session is over, -1 told to stop. */
static int
respond(const struct fake_smtp *s, struct conn *c, enum smtp_step step, size_t number)
{
	const char *text = s->reply[step] != NULL && number >= s->scripted_from ? s->reply[step] :
	    default_reply[step];
	char queued[64];
	struct buf ignored;
	int r;

	if (text == NULL) {
		snprintf(queued, sizeof(queued), "250 2.0.0 Ok: queued as FAKE%zu\r\n", number);
		text = queued;
	}
	if (strcmp(text, FAKE_SMTP_CLOSE) == 0)
		return 0;
	if (strcmp(text, FAKE_SMTP_SILENT) == 0) {
		/* Hold the connection without a word until the client gives up. */
		buf_init(&ignored);
		while ((r = conn_line(c, &ignored)) == 1)
			buf_reset(&ignored);
		buf_release(&ignored);
		return r;
	}
	return write_fully(c->fd, text, strlen(text)) ? 1 : 0;
}

static int
step_of(const char *line)
{
	static const struct { const char *verb; enum smtp_step step; } verbs[] = {
		{ "EHLO ", SMTP_EHLO }, { "MAIL FROM:", SMTP_MAIL }, { "RCPT TO:", SMTP_RCPT },
		{ "DATA\r\n", SMTP_DATA }, { "QUIT\r\n", SMTP_QUIT },
	};

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (str_nieq(line, verbs[i].verb, strlen(verbs[i].verb)))
			return (int)verbs[i].step;
	return -1;
}

/* One SMTP session; -1 when told to stop. */
static int
session(struct fake_smtp *s, struct fake_smtp_session *ss, int fd, size_t number)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct buf line;
	int r, step;

	c->fd = fd;
	c->stop = s->stop[0];
	buf_init(&line);
	r = respond(s, c, SMTP_GREETING, number);
	while (r == 1) {
		buf_reset(&line);
		if ((r = conn_line(c, &line)) != 1)
			break;
		buf_append(&ss->commands, line.data, line.len);
		if ((step = step_of(line.data)) < 0) {
			static const char unknown[] = "500 5.5.2 Error: command not recognized\r\n";

			r = write_fully(fd, unknown, strlen(unknown)) ? 1 : 0;
			continue;
		}
		if (step == SMTP_QUIT)
			ss->quit = true;
		r = respond(s, c, (enum smtp_step)step, number);
		if (r != 1 || step == SMTP_QUIT)
			break;
		if (step != SMTP_DATA || (s->reply[SMTP_DATA] != NULL && number >= s->scripted_from &&
		    s->reply[SMTP_DATA][0] != '3'))
			continue;
		/* The message, up to the line with a single dot. */
		do {
			buf_reset(&line);
			if ((r = conn_line(c, &line)) != 1)
				break;
			buf_append(&ss->data, line.data, line.len);
		} while (strcmp(line.data, ".\r\n") != 0);
		if (r == 1)
			r = respond(s, c, SMTP_DOT, number);
	}
	buf_release(&line);
	free(c);
	return r < 0 ? -1 : 0;
}

static void *
serve(void *arg)
{
	struct fake_smtp *s = arg;

	for (;;) {
		struct pollfd p[2] = { { s->listen_fd, POLLIN, 0 }, { s->stop[0], POLLIN, 0 } };
		int fd, r = 0;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		if ((fd = accept(s->listen_fd, NULL, NULL)) < 0)
			continue;
		if (s->nsessions < FAKE_SMTP_SESSIONS) {
			s->nsessions++;
			r = session(s, &s->session[s->nsessions - 1], fd, s->nsessions);
		}
		close(fd);
		if (r < 0)
			break;
	}
	return NULL;
}

struct fake_smtp *
fake_smtp_new(void)
{
	struct fake_smtp *s = calloc(1, sizeof(*s));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (s == NULL || pipe(s->stop) != 0)
		abort();
	for (size_t i = 0; i < FAKE_SMTP_SESSIONS; i++) {
		buf_init(&s->session[i].commands);
		buf_init(&s->session[i].data);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(s->listen_fd, FAKE_SMTP_SESSIONS) != 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	s->port = ntohs(sin.sin_port);
	snprintf(s->target, sizeof(s->target), "inet:%d@127.0.0.1", s->port);
	return s;
}

void
fake_smtp_serve(struct fake_smtp *s)
{
	if (pthread_create(&s->thread, NULL, serve, s) != 0)
		abort();
	s->running = true;
}

void
fake_smtp_stop(struct fake_smtp *s)
{
	if (!s->running)
		return;
	if (write(s->stop[1], "x", 1) != 1)
		abort();
	pthread_join(s->thread, NULL);
	s->running = false;
}

void
fake_smtp_free(struct fake_smtp *s)
{
	if (s == NULL)
		return;
	fake_smtp_stop(s);
	close(s->listen_fd);
	close(s->stop[0]);
	close(s->stop[1]);
	for (size_t i = 0; i < FAKE_SMTP_SESSIONS; i++) {
		buf_release(&s->session[i].commands);
		buf_release(&s->session[i].data);
	}
	free(s);
}

char *
fake_smtp_message(const struct fake_smtp_session *ss, size_t *len)
{
	const char *p = ss->data.data != NULL ? ss->data.data : "", *end = p + ss->data.len;
	struct buf out;

	buf_init(&out);
	buf_append(&out, "", 0);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (n == 3 && memcmp(p, ".\r\n", 3) == 0)
			break;
		if (p[0] == '.')
			buf_append(&out, p + 1, n - 1);
		else
			buf_append(&out, p, n);
		p += n;
	}
	*len = out.len;
	return out.data;
}

int
fake_smtp_closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	close(fd);
	return ntohs(sin.sin_port);
}
