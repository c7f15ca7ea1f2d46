/* metrics_server - GET /metrics over HTTP on a loopback address; see metrics_server.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics.h"
#include "metrics_server.h"

struct metrics_server {
	int fd;
	struct MHD_Daemon *d;
	metrics_render_fn render;
	void *arg;
};

cables_status
metrics_server_bind(const char *spec, struct metrics_server **out, struct cables_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct metrics_server *s;
	int fd, one = 1;
	cables_status st;

	*out = NULL;
	if ((st = metrics_listen_parse(spec, &ss, &len, err)) != CABLES_OK)
		return st;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cables_fail(err, CABLES_ERR_IO, "%s: socket: %s", spec, strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0) {
		st = cables_fail(err, CABLES_ERR_IO, "%s: %s", spec, strerror(errno));
		close(fd);
		return st;
	}
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	*out = s;
	return CABLES_OK;
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned int status, struct buf *body, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **state)
{
	struct metrics_server *s = cls;
	struct buf body;
	enum MHD_Result ret;
	unsigned int status;
	const char *type = "text/plain; charset=utf-8", *host;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)state;
	/* Answered on the first call, before any body is read: a body is never wanted here. */
	buf_init(&body);
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (host != NULL && !metrics_host_is_loopback(host)) {
		status = MHD_HTTP_FORBIDDEN;
		buf_appends(&body, "forbidden: the Host header must name a loopback address\n");
	} else if (strcmp(url, "/metrics") != 0) {
		status = MHD_HTTP_NOT_FOUND;
		buf_appends(&body, "not found: only /metrics is served here\n");
	} else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		buf_appends(&body, "GET only\n");
	} else {
		status = MHD_HTTP_OK;
		type = "text/plain; version=0.0.4; charset=utf-8";
		s->render(&body, s->arg);
	}
	ret = respond(c, status, &body, type);
	buf_release(&body);
	return ret;
}

cables_status
metrics_server_start(struct metrics_server *s, metrics_render_fn render, void *arg, struct cables_err *err)
{
	s->render = render;
	s->arg = arg;
	/* One thread, few short connections, small buffers: a scraper's load, never a client's. */
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, handle, s,
	    MHD_OPTION_LISTEN_SOCKET, s->fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)8,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)5,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(8 * 1024),
	    MHD_OPTION_END);
	if (s->d == NULL)
		return cables_fail(err, CABLES_ERR_IO, "the metrics endpoint does not start");
	s->fd = -1;	/* the daemon's now */
	return CABLES_OK;
}

void
metrics_server_stop(struct metrics_server *s)
{
	if (s == NULL)
		return;
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
