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
	struct header_digest *hd;	/* while writing the header block: what it digests, or NULL */
};

/*
 * The header block's digest: every field but Received (each hop prepends
 * one) and the marker itself, in order, in a relaxed form (name in
 * lowercase; runs of spaces, tabs and line breaks in the value made one
 * space; no space at either end), so folding and the milter protocol's
 * leading space do not matter.
 */
struct header_digest {
	EVP_MD_CTX *md;
	struct buf line;	/* the line being read */
	struct buf field;	/* the field being read: its lines joined */
	bool ok;
};

static void
header_digest_init(struct header_digest *d)
{
	d->md = EVP_MD_CTX_new();
	d->ok = d->md != NULL && EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) == 1;
	buf_init(&d->line);
	buf_init(&d->field);
}

/* The field read so far, into the digest (unless it is one that does not count). */
static void
header_digest_field(struct header_digest *d)
{
	const char *f = d->field.data, *colon;
	size_t name_len;
	struct buf canon;
	bool space = false;

	if (d->field.len == 0 || (colon = memchr(f, ':', d->field.len)) == NULL) {
		d->field.len = 0;
		return;
	}
	name_len = (size_t)(colon - f);
	while (name_len > 0 && (f[name_len - 1] == ' ' || f[name_len - 1] == '\t'))
		name_len--;
	if ((name_len == 8 && str_nieq(f, "Received", 8)) ||
	    (name_len == strlen(REINJECT_MARKER) && str_nieq(f, REINJECT_MARKER, name_len))) {
		d->field.len = 0;
		return;
	}
	buf_init(&canon);
	for (size_t i = 0; i < name_len; i++) {
		char c = f[i] >= 'A' && f[i] <= 'Z' ? (char)(f[i] - 'A' + 'a') : f[i];

		buf_append(&canon, &c, 1);
	}
	buf_append(&canon, ":", 1);
	for (const char *v = colon + 1; v < f + d->field.len; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = true;
			continue;
		}
		if (space && canon.data[canon.len - 1] != ':')
			buf_append(&canon, " ", 1);
		space = false;
		buf_append(&canon, v, 1);
	}
	buf_append(&canon, "\r\n", 2);
	d->ok = d->ok && EVP_DigestUpdate(d->md, canon.data, canon.len) == 1;
	buf_release(&canon);
	d->field.len = 0;
}

/* One whole line (without its line end): a new field, or the continuation of the last one. */
static void
header_digest_line(struct header_digest *d, const char *p, size_t n)
{
	if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		buf_append(&d->field, " ", 1);
	} else {
		header_digest_field(d);
	}
	buf_append(&d->field, p, n);
}

/* Bytes of the header block, in pieces of any size. */
static void
header_digest_feed(struct header_digest *d, const char *p, size_t n)
{
	const char *end = p + n, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		buf_append(&d->line, p, (size_t)(nl - p));
		if (d->line.len > 0 && d->line.data[d->line.len - 1] == '\r')
			d->line.len--;
		header_digest_line(d, d->line.data != NULL ? d->line.data : "", d->line.len);
		d->line.len = 0;
		p = nl + 1;
	}
	buf_append(&d->line, p, (size_t)(end - p));
}

/* The digest of everything fed; false when the digest could not be made. */
static bool
header_digest_final(struct header_digest *d, uint8_t out[32])
{
	bool ok;

	if (d->line.len > 0)
		header_digest_line(d, d->line.data, d->line.len);
	header_digest_field(d);
	ok = d->ok && EVP_DigestFinal_ex(d->md, out, NULL) == 1;
	EVP_MD_CTX_free(d->md);
	buf_release(&d->line);
	buf_release(&d->field);
	return ok;
}

static cables_status
header_digest_piece(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)err;
	header_digest_feed(arg, p, n);
	return CABLES_OK;
}

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

/* Bytes of the header block: into the digest (when the copy gets a marker), then out. */
static cables_status
header_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	struct smtp *s = arg;

	if (s->hd != NULL)
		header_digest_feed(s->hd, p, n);
	return data_write(s, p, n, err);
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
		if (!skip && (st = header_write(s, line, n, err)) != CABLES_OK)
			break;
	}
	free(lines);
	return st;
}

static cables_status marker_make(const uint8_t key[REINJECT_KEY_LEN], time_t now, const char *sender,
    const char *const *rcpts, size_t n, const uint8_t header_digest[32], const uint8_t body_digest[32],
    char *out, size_t len, struct cables_err *err);
static cables_status body_digest(const struct entity_src *body, uint8_t out[32], struct cables_err *err);

/* The marker, last in the header block: it covers every field written before it. */
static cables_status
write_marker(struct smtp *s, const struct reinject_copy *c, const uint8_t body_dig[32], struct cables_err *err)
{
	const char **names;
	uint8_t hdig[32];
	char line[300];
	size_t off;
	bool ok;
	cables_status st;

	if (s->hd == NULL)
		return CABLES_OK;
	ok = header_digest_final(s->hd, hdig);
	s->hd = NULL;
	if (!ok)
		return cables_fail(err, CABLES_ERR_CRYPTO, "digesting a header block");
	names = xcalloc(c->nrcpts + 1, sizeof(*names));
	for (size_t i = 0; i < c->nrcpts; i++)
		names[i] = c->rcpts[i].addr;
	off = (size_t)snprintf(line, sizeof(line), "%s: ", REINJECT_MARKER);
	st = marker_make(c->marker_key, c->now, c->sender, names, c->nrcpts, hdig, body_dig, line + off,
	    sizeof(line) - off - 2, err);
	free(names);
	if (st != CABLES_OK)
		return st;
	off = strlen(line);
	memcpy(line + off, "\r\n", 2);
	return data_write(s, line, off + 2, err);
}

/*
 * The queue ID in the server's reply to the end of DATA, for the log: Postfix
 * says "250 2.0.0 Ok: queued as ID", Sendmail "250 2.0.0 ID Message accepted
 * for delivery".  Any other wording leaves out empty.
 */
static void
reply_queue_id(const char *text, char *out, size_t len)
{
	const char *q = strstr(text, "queued as "), *p;
	size_t n;

	out[0] = '\0';
	if (q != NULL) {
		/* Letters and digits only: the ID goes into the log, and the listener's reply is not ours. */
		snprintf(out, len, "%.*s", (int)strspn(q + 10,
		    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"), q + 10);
		return;
	}
	/* Sendmail: the code, the enhanced status code, the ID, then its fixed text. */
	p = text + strspn(text, "0123456789");
	p += strspn(p, " -");
	if (*p >= '2' && *p <= '5' && p[1] == '.')
		p += strcspn(p, " ");
	p += strspn(p, " ");
	n = strspn(p, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	if (n > 0 && strncmp(p + n, " Message accepted for delivery", 30) == 0)
		snprintf(out, len, "%.*s", (int)n, p);
}

cables_status
reinject_send(const char *spec, const struct reinject_copy *c, int timeout, char *queue_id, size_t qlen,
    struct cables_err *err)
{
	struct smtp *s = xcalloc(1, sizeof(*s));
	struct header_digest hd;
	uint8_t bdig[32];
	struct buf ehlo;
	char text[512];
	int code;
	cables_status st;

	queue_id[0] = '\0';
	buf_init(&ehlo);
	if (c->marker_key != NULL && (st = body_digest(c->body, bdig, err)) != CABLES_OK) {
		free(s);
		return st;
	}
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
	if (c->marker_key != NULL) {
		header_digest_init(&hd);
		s->hd = &hd;
	}
	if ((c->first != NULL && (st = header_write(s, c->first->data, c->first->len, err)) != CABLES_OK) ||
	    (st = write_original_fields(s, c, err)) != CABLES_OK ||
	    (c->content != NULL && (st = header_write(s, c->content->data, c->content->len, err)) != CABLES_OK) ||
	    (st = write_marker(s, c, bdig, err)) != CABLES_OK ||
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
	reply_queue_id(text, queue_id, qlen);
	smtp_cmd(s, '2', "QUIT", NULL, NULL, "QUIT");
	st = CABLES_OK;
out:
	if (s->hd != NULL)
		header_digest_final(s->hd, bdig);	/* only to free it */
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

static cables_status
body_digest(const struct entity_src *body, uint8_t out[32], struct cables_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	cables_status st;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		st = cables_fail(err, CABLES_ERR_CRYPTO, "digesting a copy");
	else if ((st = entity_src_each(body, digest_piece, md, err)) == CABLES_OK &&
	    EVP_DigestFinal_ex(md, out, NULL) != 1)
		st = cables_fail(err, CABLES_ERR_CRYPTO, "digesting a copy");
	EVP_MD_CTX_free(md);
	return st;
}

/*
 * HMAC over "v2", t, nonce, the envelope sender, the sorted lowercase
 * recipients, and the digests of the header block and the body.
 */
static bool
marker_mac(const uint8_t key[REINJECT_KEY_LEN], long long t, const char *nonce, const char *sender,
    const char *const *rcpts, size_t n, const uint8_t header_digest[32], const uint8_t body_digest[32],
    char hex[65])
{
	char **sorted = xcalloc(n + 2, sizeof(*sorted));
	struct buf msg;
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	bool ok;

	/* Lowercase first: the order must not depend on case either. */
	for (size_t i = 0; i < n; i++) {
		sorted[i] = xstrdup(rcpts[i]);
		str_lower(sorted[i]);
	}
	sorted[n] = xstrdup(sender);
	str_lower(sorted[n]);
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	buf_init(&msg);
	buf_printf(&msg, "v2\n%lld\n%s\n%s\n%zu\n", t, nonce, sorted[n], n);
	for (size_t i = 0; i <= n; i++) {
		if (i < n)
			buf_printf(&msg, "%s\n", sorted[i]);
		free(sorted[i]);
	}
	buf_append(&msg, header_digest, 32);
	buf_append(&msg, body_digest, 32);
	ok = HMAC(EVP_sha256(), key, REINJECT_KEY_LEN, (const uint8_t *)msg.data, msg.len, mac, &mac_len) != NULL &&
	    mac_len == 32;
	if (ok)
		hex_encode(mac, 32, hex);
	buf_release(&msg);
	free(sorted);
	return ok;
}

/* A new marker value: a fresh nonce and the MAC over the rest. */
static cables_status
marker_make(const uint8_t key[REINJECT_KEY_LEN], time_t now, const char *sender, const char *const *rcpts,
    size_t n, const uint8_t header_digest[32], const uint8_t body_digest[32], char *out, size_t len,
    struct cables_err *err)
{
	uint8_t rnd[8];
	char nonce[17], hex[65];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return cables_fail(err, CABLES_ERR_CRYPTO, "making a marker");
	hex_encode(rnd, sizeof(rnd), nonce);
	if (!marker_mac(key, (long long)now, nonce, sender, rcpts, n, header_digest, body_digest, hex))
		return cables_fail(err, CABLES_ERR_CRYPTO, "making a marker");
	snprintf(out, len, "v2 t=%lld n=%s h=%s", (long long)now, nonce, hex);
	return CABLES_OK;
}

/* The digests of a message as it arrived (headers: every field, as the milter spools them). */
static cables_status
received_digests(const struct reinject_received *r, uint8_t header_digest[32], uint8_t body_digest_out[32],
    struct cables_err *err)
{
	struct header_digest hd;
	struct entity_src src;
	cables_status st;

	entity_src_init(&src);
	entity_src_spool(&src, r->body, 0, -1);
	if ((st = body_digest(&src, body_digest_out, err)) != CABLES_OK)
		return st;
	header_digest_init(&hd);
	entity_src_init(&src);
	entity_src_spool(&src, r->headers, 0, -1);
	st = entity_src_each(&src, header_digest_piece, &hd, err);
	if (!header_digest_final(&hd, header_digest) && st == CABLES_OK)
		st = cables_fail(err, CABLES_ERR_CRYPTO, "digesting a header block");
	return st;
}

cables_status
reinject_marker_for(const uint8_t key[REINJECT_KEY_LEN], time_t now, const struct reinject_received *r,
    char *out, size_t len, struct cables_err *err)
{
	uint8_t hdig[32], bdig[32];
	cables_status st;

	if ((st = received_digests(r, hdig, bdig, err)) != CABLES_OK)
		return st;
	return marker_make(key, now, r->sender, r->rcpts, r->nrcpts, hdig, bdig, out, len, err);
}

bool
reinject_marker_verify(const uint8_t key[REINJECT_KEY_LEN], const char *value, time_t now, long window,
    const struct reinject_received *r, struct reinject_stamp *stamp)
{
	long long t;
	char nonce[17], given[65], expect[65];
	uint8_t hdig[32], bdig[32];

	while (*value == ' ' || *value == '\t')
		value++;
	if (sscanf(value, "v2 t=%lld n=%16[0-9a-f] h=%64[0-9a-f]", &t, nonce, given) != 3 ||
	    strlen(nonce) != 16 || strlen(given) != 64)
		return false;
	if (t > (long long)now + 300 || t < (long long)now - window)
		return false;
	if (received_digests(r, hdig, bdig, NULL) != CABLES_OK ||
	    !marker_mac(key, t, nonce, r->sender, r->rcpts, r->nrcpts, hdig, bdig, expect) ||
	    CRYPTO_memcmp(given, expect, 64) != 0)
		return false;
	if (stamp != NULL) {
		stamp->t = t;
		memcpy(stamp->mac, given, sizeof(stamp->mac));
	}
	return true;
}
