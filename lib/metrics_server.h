/*
 * metrics_server - a small HTTP server (libmicrohttpd, on its own thread)
 * that answers GET /metrics on a loopback address (MetricsListen,
 * metrics.h) with what the program's render function writes, and nothing
 * else.  Kept apart from metrics.c so that only the programs that serve
 * metrics link libmicrohttpd.  Functions fail with a status and a reason
 * and never log.  The server owns nothing of the caller's but calls
 * render(out, arg) on its thread, so arg must outlive the server.
 */
#ifndef CABLES_METRICS_SERVER_H
#define CABLES_METRICS_SERVER_H

#include "status.h"
#include "util.h"

/* Fills out with the exposition text; called on the server's thread. */
typedef void (*metrics_render_fn)(struct buf *out, void *arg);

struct metrics_server;

/*
 * Bind spec (before privileges are dropped and before daemon(): errors go
 * to the terminal); start serving later, from the process that will run
 * (the server's thread must not cross fork()).  metrics_server_stop()
 * stops and frees it (NULL is fine).  Requests are bounded: a request line
 * and header fields within 8 KB, no body read, 8 connections at once,
 * each closed after 5 seconds idle; only GET and HEAD of /metrics are answered 200, other
 * paths 404, other methods 405, a Host header that is not a loopback
 * address 403 (metrics_host_is_loopback()).
 */
cables_status metrics_server_bind(const char *spec, struct metrics_server **out, struct cables_err *err);
cables_status metrics_server_start(struct metrics_server *s, metrics_render_fn render, void *arg,
    struct cables_err *err);
void metrics_server_stop(struct metrics_server *s);

#endif
