/* khclient - the milter's connection to cables-keyholder; see khclient.h. */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "counters.h"
#include "khclient.h"
#include "util.h"

struct khclient {
	char *path;
	pthread_mutex_t lock;		/* guards idle[] and nidle */
	int idle[KHCLIENT_IDLE_MAX];	/* connections no call is using */
	size_t nidle;
	struct kh_transport t;
};

static _Thread_local bool outage;

void
khclient_outage_clear(void)
{
	outage = false;
}

bool
khclient_outage(void)
{
	return outage;
}

/* An idle connection, or -1 when there is none. */
static int
take_idle(struct khclient *c)
{
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	if (c->nidle > 0)
		fd = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	return fd;
}

/* A connection that answered whole: kept for the next call, or closed when enough are kept. */
static void
give_back(struct khclient *c, int fd)
{
	pthread_mutex_lock(&c->lock);
	if (c->nidle < KHCLIENT_IDLE_MAX) {
		c->idle[c->nidle++] = fd;
		fd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
}

static cables_status
call(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	struct khclient *c = arg;
	int fd = take_idle(c);
	uint8_t out[KH_REQUEST_SIZE], in[KH_REPLY_SIZE];
	cables_status st = CABLES_ERR_IO;

	if (kh_request_encode(out, req, err) != CABLES_OK)
		return CABLES_ERR_ARG;
	for (int attempt = 0; attempt < 2 && st != CABLES_OK; attempt++) {
		bool fresh = fd < 0;

		if (fresh && (fd = unix_connect(c->path, 0)) < 0) {
			cables_fail(err, CABLES_ERR_IO, "keyholder %s: %s", c->path, strerror(errno));
			break;
		}
		if (send_fully(fd, out, sizeof(out)) &&
		    recv_exactly(fd, in, sizeof(in), monotonic_ms() + KHCLIENT_TIMEOUT_MS)) {
			st = kh_reply_decode(rep, in, err) == CABLES_OK ? CABLES_OK : CABLES_ERR_IO;
			if (st != CABLES_OK) {
				close(fd);
				fd = -1;
				break;
			}
		} else {
			close(fd);
			fd = -1;
			cables_fail(err, CABLES_ERR_IO, "keyholder %s: no answer", c->path);
			if (fresh)
				break;	/* a new connection failed too: no second try */
		}
	}
	if (fd >= 0)
		give_back(c, fd);
	counters_keyholder(req->op, rep, st == CABLES_OK);
	if (st != CABLES_OK || rep->status == KH_UNAVAILABLE || rep->status == KH_LIMITED)
		outage = true;
	OPENSSL_cleanse(out, sizeof(out));
	OPENSSL_cleanse(in, sizeof(in));
	return st;
}

struct khclient *
khclient_new(const char *path)
{
	struct khclient *c = xcalloc(1, sizeof(*c));

	c->path = xstrdup(path);
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		abort();
	c->t.call = call;
	c->t.arg = c;
	return c;
}

void
khclient_free(struct khclient *c)
{
	if (c == NULL)
		return;
	while (c->nidle > 0)
		close(c->idle[--c->nidle]);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}

const struct kh_transport *
khclient_transport(struct khclient *c)
{
	return &c->t;
}
