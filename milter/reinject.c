/* reinject - copies of a message back to the MTA, and their marker; see reinject.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "mime.h"
#include "reinject.h"

struct smtp {
	int fd;
	int timeout;
	char in[4096];
	size_t have;
	char out[16384];
	size_t nout;
	bool line_start;	/* DATA: the next byte starts a line (dot-stuffing) */
	bool esmtp_dsn, esmtp_8bit, esmtp_utf8;
};

bool
reinject_target_valid(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return inet_spec_parse(spec, &ss, &len);
}

static cables_status
smtp_connect(struct smtp *s, const char *spec, int timeout, struct cables_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct pollfd pfd;
	int flags, soerr = 0;
	socklen_t elen = sizeof(soerr);
	struct timeval tv = { timeout, 0 };

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->timeout = timeout;
	if (!inet_spec_parse(spec, &ss, &len))
		return cables_fail(err, CABLES_ERR_ARG, "ReinjectTo %s is not inet:PORT@ADDRESS", spec);
	s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return cables_fail(err, CABLES_ERR_IO, "re-injection socket: %s", strerror(errno));
	flags = fcntl(s->fd, F_GETFL);
	fcntl(s->fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(s->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS)
		return cables_fail(err, CABLES_ERR_IO, "re-injection to %s: connect: %s", spec, strerror(errno));
	pfd.fd = s->fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, timeout * 1000) != 1 ||
	    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) != 0 || soerr != 0)
		return cables_fail(err, CABLES_ERR_IO, "re-injection to %s: connect: %s", spec,
		    soerr != 0 ? strerror(soerr) : "timed out");
	fcntl(s->fd, F_SETFL, flags);
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return CABLES_OK;
}

static cables_status
smtp_flush(struct smtp *s, struct cables_err *err)
{
	size_t done = 0;

	while (done < s->nout) {
		/* No SIGPIPE when the server has gone: the error is reported instead. */
		ssize_t w = send(s->fd, s->out + done, s->nout - done, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return cables_fail(err, CABLES_ERR_IO, "re-injection: write: %s",
			    errno == EAGAIN ? "timed out" : strerror(errno));
		}
		done += (size_t)w;
	}
	s->nout = 0;
	return CABLES_OK;
}

static cables_status
smtp_write(struct smtp *s, const void *p, size_t n, struct cables_err *err)
{
	const char *c = p;

	while (n > 0) {
		size_t take = sizeof(s->out) - s->nout < n ? sizeof(s->out) - s->nout : n;
		cables_status st;

		memcpy(s->out + s->nout, c, take);
		s->nout += take;
		c += take;
		n -= take;
		if (s->nout == sizeof(s->out) && (st = smtp_flush(s, err)) != CABLES_OK)
			return st;
	}
	return CABLES_OK;
}

/* Read one reply (all its lines); *code is its code, text its last line. */
static cables_status
smtp_reply(struct smtp *s, int *code, char *text, size_t tlen, struct buf *lines, struct cables_err *err)
{
	for (;;) {
		char *nl = memchr(s->in, '\n', s->have);

		if (nl != NULL) {
			size_t n = (size_t)(nl - s->in) + 1;
			bool last = n >= 4 && s->in[3] != '-';

			if (n < 4 || s->in[0] < '2' || s->in[0] > '5')
				return cables_fail(err, CABLES_ERR_SYNTAX, "re-injection: the server does not speak SMTP");
			*code = (s->in[0] - '0') * 100 + (s->in[1] - '0') * 10 + (s->in[2] - '0');
			if (lines != NULL)
				buf_append(lines, s->in, n);
			if (last)
				snprintf(text, tlen, "%.*s", (int)(n - (n >= 2 && s->in[n - 2] == '\r' ? 2 : 1)), s->in);
			memmove(s->in, s->in + n, s->have - n);
			s->have -= n;
			if (last)
				return CABLES_OK;
			continue;
		}
		if (s->have == sizeof(s->in))
			return cables_fail(err, CABLES_ERR_SYNTAX, "re-injection: reply line too long");
		{
			ssize_t r = read(s->fd, s->in + s->have, sizeof(s->in) - s->have);

			if (r <= 0)
				return cables_fail(err, CABLES_ERR_IO, "re-injection: %s",
				    r == 0 ? "the server closed the connection" :
				    errno == EAGAIN ? "timed out waiting for the server" : strerror(errno));
			s->have += (size_t)r;
		}
	}
}

/* Send a command and expect a reply whose code starts with want. */
static cables_status
smtp_cmd(struct smtp *s, char want, const char *what, struct buf *lines, struct cables_err *err,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static cables_status
smtp_cmd(struct smtp *s, char want, const char *what, struct buf *lines, struct cables_err *err,
    const char *fmt, ...)
{
	char line[1024], text[512];
	va_list ap;
	int n, code;
	cables_status st;

	if (fmt != NULL) {
		va_start(ap, fmt);
		n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= sizeof(line) - 2)
			return cables_fail(err, CABLES_ERR_ARG, "re-injection: %s command too long", what);
		memcpy(line + n, "\r\n", 2);
		if ((st = smtp_write(s, line, (size_t)n + 2, err)) != CABLES_OK ||
		    (st = smtp_flush(s, err)) != CABLES_OK)
			return st;
	}
	if ((st = smtp_reply(s, &code, text, sizeof(text), lines, err)) != CABLES_OK)
		return st;
	if (text[0] != want)
		return cables_fail(err, CABLES_ERR_IO, "re-injection: %s refused: %s", what, text);
	return CABLES_OK;
}

/* DATA bytes, dot-stuffed. */
static cables_status
data_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	struct smtp *s = arg;
	const char *c = p, *end = c + n, *run = c;
	cables_status st;

	for (; c < end; c++) {
		if (s->line_start && *c == '.') {
			if ((st = smtp_write(s, run, (size_t)(c - run), err)) != CABLES_OK ||
			    (st = smtp_write(s, ".", 1, err)) != CABLES_OK)
				return st;
			run = c;
		}
		s->line_start = *c == '\n';
	}
	return smtp_write(s, run, (size_t)(end - run), err);
}

/* Is the index-th Authentication-Results field one the copy leaves out? */
static bool
drop_authres(const struct reinject_copy *c, unsigned int index)
{
	for (size_t i = 0; i < c->ndrop_authres; i++)
		if (c->drop_authres[i] == index)
			return true;
	return false;
}

/*
 * The original fields, without X-Cables fields, markers, the
 * Authentication-Results fields asked, and (if asked) content fields.
 */
static cables_status
write_original_fields(struct smtp *s, const struct reinject_copy *c, struct cables_err *err)
{
	struct spool_lines *lines = xmalloc(sizeof(*lines));
	const char *line;
	size_t n;
	off_t off;
	bool at_start, whole, skip = false;
	unsigned int nauthres = 0;
	cables_status st = CABLES_OK;

	spool_lines_init(lines, c->headers, 0, -1);
	for (;;) {
		if ((st = spool_lines_next(lines, &line, &n, &off, &at_start, &whole, err)) != CABLES_OK || n == 0)
			break;
		if (at_start && line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', n);
			size_t name = colon != NULL ? (size_t)(colon - line) : n;

			if (name == 22 && str_nieq(line, "Authentication-Results", 22))
				nauthres++;
			skip = (name == 8 && str_nieq(line, "X-Cables", 8)) ||
			    (name == 22 && str_nieq(line, "Authentication-Results", 22) && drop_authres(c, nauthres)) ||
			    (name == strlen(REINJECT_MARKER) && str_nieq(line, REINJECT_MARKER, name)) ||
			    (c->drop_content_fields && name < n && mime_is_content_header(line, name));
		}
		if (!skip && (st = data_write(s, line, n, err)) != CABLES_OK)
			break;
	}
	free(lines);
	return st;
}

cables_status
reinject_send(const char *spec, const struct reinject_copy *c, int timeout, char *queue_id, size_t qlen,
    struct cables_err *err)
{
	struct smtp *s = xcalloc(1, sizeof(*s));
	struct buf ehlo;
	char text[512];
	int code;
	cables_status st;

	queue_id[0] = '\0';
	buf_init(&ehlo);
	if ((st = smtp_connect(s, spec, timeout, err)) != CABLES_OK ||
	    (st = smtp_cmd(s, '2', "greeting", NULL, err, NULL)) != CABLES_OK ||
	    (st = smtp_cmd(s, '2', "EHLO", &ehlo, err, "EHLO cables-reinject")) != CABLES_OK)
		goto out;
	s->esmtp_dsn = strstr(ehlo.data, "250-DSN") != NULL || strstr(ehlo.data, "250 DSN") != NULL;
	s->esmtp_8bit = strstr(ehlo.data, "8BITMIME") != NULL;
	s->esmtp_utf8 = strstr(ehlo.data, "SMTPUTF8") != NULL;
	{
		/* Parameters the server announced only. */
		struct buf args;
		char *copy = c->mail_esmtp != NULL ? xstrdup(c->mail_esmtp) : NULL, *save = NULL, *a;

		buf_init(&args);
		for (a = copy != NULL ? strtok_r(copy, " ", &save) : NULL; a != NULL; a = strtok_r(NULL, " ", &save))
			if (((str_nieq(a, "RET=", 4) || str_nieq(a, "ENVID=", 6)) && s->esmtp_dsn) ||
			    (str_nieq(a, "BODY=", 5) && s->esmtp_8bit) || (str_ieq(a, "SMTPUTF8") && s->esmtp_utf8))
				buf_printf(&args, " %s", a);
		free(copy);
		st = smtp_cmd(s, '2', "MAIL FROM", NULL, err, "MAIL FROM:<%s>%s", c->sender,
		    args.data != NULL ? args.data : "");
		buf_release(&args);
		if (st != CABLES_OK)
			goto out;
	}
	for (size_t i = 0; i < c->nrcpts; i++) {
		const char *args = c->rcpts[i].esmtp != NULL && s->esmtp_dsn ? c->rcpts[i].esmtp : NULL;

		if ((st = smtp_cmd(s, '2', "RCPT TO", NULL, err, "RCPT TO:<%s>%s%s", c->rcpts[i].addr,
		    args != NULL ? " " : "", args != NULL ? args : "")) != CABLES_OK)
			goto out;
	}
	if ((st = smtp_cmd(s, '3', "DATA", NULL, err, "DATA")) != CABLES_OK)
		goto out;
	s->line_start = true;
	if ((c->first != NULL && (st = data_write(s, c->first->data, c->first->len, err)) != CABLES_OK) ||
	    (st = write_original_fields(s, c, err)) != CABLES_OK ||
	    (c->content != NULL && (st = data_write(s, c->content->data, c->content->len, err)) != CABLES_OK) ||
	    (st = data_write(s, "\r\n", 2, err)) != CABLES_OK ||
	    (st = entity_src_each(c->body, data_write, s, err)) != CABLES_OK)
		goto out;
	if ((!s->line_start && (st = smtp_write(s, "\r\n", 2, err)) != CABLES_OK) ||
	    (st = smtp_write(s, ".\r\n", 3, err)) != CABLES_OK || (st = smtp_flush(s, err)) != CABLES_OK ||
	    (st = smtp_reply(s, &code, text, sizeof(text), NULL, err)) != CABLES_OK)
		goto out;
	if (text[0] != '2') {
		st = cables_fail(err, CABLES_ERR_IO, "re-injection: the copy was refused: %s", text);
		goto out;
	}
	{
		const char *q = strstr(text, "queued as ");

		if (q != NULL)
			snprintf(queue_id, qlen, "%.*s", (int)strcspn(q + 10, " \r\n"), q + 10);
	}
	smtp_cmd(s, '2', "QUIT", NULL, NULL, "QUIT");
	st = CABLES_OK;
out:
	if (s->fd >= 0)
		close(s->fd);
	buf_release(&ehlo);
	free(s);
	return st;
}

/* ---- the marker ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cables_status
digest_piece(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return EVP_DigestUpdate(arg, p, n) == 1 ? CABLES_OK :
	    cables_fail(err, CABLES_ERR_CRYPTO, "digesting a copy");
}

/* HMAC over "v1", t, nonce, the sorted lowercase recipients and the body digest. */
static bool
marker_mac(const uint8_t key[REINJECT_KEY_LEN], long long t, const char *nonce, const char *const *rcpts,
    size_t n, const uint8_t body_digest[32], char hex[65])
{
	char **sorted = xcalloc(n + 1, sizeof(*sorted));
	struct buf msg;
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	bool ok;

	/* Lowercase first: the order must not depend on case either. */
	for (size_t i = 0; i < n; i++) {
		sorted[i] = xstrdup(rcpts[i]);
		str_lower(sorted[i]);
	}
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	buf_init(&msg);
	buf_printf(&msg, "v1\n%lld\n%s\n", t, nonce);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&msg, "%s\n", sorted[i]);
		free(sorted[i]);
	}
	buf_append(&msg, body_digest, 32);
	ok = HMAC(EVP_sha256(), key, REINJECT_KEY_LEN, (const uint8_t *)msg.data, msg.len, mac, &mac_len) != NULL &&
	    mac_len == 32;
	if (ok)
		hex_encode(mac, 32, hex);
	buf_release(&msg);
	free(sorted);
	return ok;
}

cables_status
reinject_marker(const uint8_t key[REINJECT_KEY_LEN], time_t now, const struct reinject_rcpt *rcpts, size_t n,
    const struct entity_src *body, char *out, size_t len, struct cables_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const char **names = xcalloc(n + 1, sizeof(*names));
	uint8_t digest[32], rnd[8];
	char nonce[17], hex[65];
	cables_status st;

	for (size_t i = 0; i < n; i++)
		names[i] = rcpts[i].addr;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		st = cables_fail(err, CABLES_ERR_CRYPTO, "digesting a copy");
	} else if ((st = entity_src_each(body, digest_piece, md, err)) == CABLES_OK) {
		if (EVP_DigestFinal_ex(md, digest, NULL) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
			st = cables_fail(err, CABLES_ERR_CRYPTO, "making a marker");
		} else {
			hex_encode(rnd, sizeof(rnd), nonce);
			if (!marker_mac(key, (long long)now, nonce, names, n, digest, hex))
				st = cables_fail(err, CABLES_ERR_CRYPTO, "making a marker");
			else
				snprintf(out, len, "v1 t=%lld n=%s h=%s", (long long)now, nonce, hex);
		}
	}
	EVP_MD_CTX_free(md);
	free(names);
	return st;
}

bool
reinject_marker_verify(const uint8_t key[REINJECT_KEY_LEN], const char *value, time_t now,
    const char *const *rcpts, size_t n, const struct spool *body)
{
	long long t;
	char nonce[17], given[65], expect[65];
	uint8_t digest[32];
	struct entity_src src;
	EVP_MD_CTX *md;
	bool ok = false;

	while (*value == ' ' || *value == '\t')
		value++;
	if (sscanf(value, "v1 t=%lld n=%16[0-9a-f] h=%64[0-9a-f]", &t, nonce, given) != 3 ||
	    strlen(nonce) != 16 || strlen(given) != 64)
		return false;
	if (t > (long long)now + 300 || t < (long long)now - REINJECT_WINDOW)
		return false;
	entity_src_init(&src);
	entity_src_spool(&src, body, 0, -1);
	md = EVP_MD_CTX_new();
	if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    entity_src_each(&src, digest_piece, md, NULL) == CABLES_OK && EVP_DigestFinal_ex(md, digest, NULL) == 1 &&
	    marker_mac(key, t, nonce, rcpts, n, digest, expect))
		ok = CRYPTO_memcmp(given, expect, 64) == 0;
	EVP_MD_CTX_free(md);
	return ok;
}
