/* keydclient - asking cables-keyd; see keydclient.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keydclient.h"
#include "keydproto.h"
#include "log.h"
#include "util.h"

/* One request of at most KEYD_BATCH_MAX addresses, asked on a connection (and a thread) of its own. */
struct batch_call {
	const char *socket_path;
	const char *const *addrs;
	size_t n;
	unsigned long timeout_ms;
	enum keyd_outcome *answers;
	struct keyd_found *found;	/* may be NULL */
	char why[CABLES_ERR_MAX];
	struct cables_err err;
	cables_status st;
};

/* The reply to one lookup request (keydproto.h): one result per address, in the order asked. */
static cables_status
parse_reply(struct batch_call *bc, const struct buf *reply)
{
	struct keyd_lookup_reply r;
	cables_status st;

	if ((st = keyd_lookup_reply_parse(reply->data, reply->len, &r, &bc->err)) != CABLES_OK) {
		keyd_lookup_reply_release(&r);
		return st;
	}
	if (r.n != bc->n) {
		st = cables_fail(&bc->err, CABLES_ERR_SYNTAX, "cables-keyd: %zu results for %zu addresses", r.n, bc->n);
		keyd_lookup_reply_release(&r);
		return st;
	}
	for (size_t i = 0; i < bc->n; i++) {
		const struct keyd_result *res = &r.results[i];
		struct keyd_found *found = bc->found != NULL ? &bc->found[i] : NULL;

		bc->answers[i] = res->outcome;
		for (size_t k = 0; found != NULL && k < res->nkeys && found->n < KEYD_FOUND_MAX; k++)
			strlcpy_c(found->fpr[found->n++], res->keys[k].fingerprint, sizeof(found->fpr[0]));
		if (found != NULL && res->outcome != KEYD_OUTCOME_FOUND)
			strlcpy_c(found->reason, res->reason, sizeof(found->reason));
		if (found != NULL) {
			found->encrypting = res->encrypting;
			found->since = res->since;
		}
		if ((res->outcome == KEYD_OUTCOME_TEMPFAIL || res->outcome == KEYD_OUTCOME_REJECT) && bc->why[0] == '\0') {
			struct buf why;

			/* As keyd worded it: "ADDRESS tempfail reason=..." */
			buf_init(&why);
			buf_printf(&why, "%s %s%s%s", res->address, keyd_outcome_name(res->outcome),
			    res->reason[0] != '\0' ? " reason=" : "", res->reason);
			strlcpy_c(bc->why, why.data, sizeof(bc->why));
			buf_release(&why);
		}
	}
	keyd_lookup_reply_release(&r);
	return CABLES_OK;
}

static void *
batch_call_run(void *arg)
{
	struct batch_call *bc = arg;
	struct buf req, reply;

	buf_init(&req);
	buf_init(&reply);
	if ((bc->st = keyd_lookup_request_format(&req, bc->addrs, bc->n, &bc->err)) == CABLES_OK &&
	    (bc->st = keyd_call(bc->socket_path, &req, bc->timeout_ms, &reply, &bc->err)) == CABLES_OK)
		bc->st = parse_reply(bc, &reply);
	buf_release(&req);
	buf_release(&reply);
	return NULL;
}

cables_status
keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_outcome *answers, struct keyd_found *found, char *why, size_t why_len, struct cables_err *err)
{
	size_t nbatches = (n + KEYD_BATCH_MAX - 1) / KEYD_BATCH_MAX, failed = 0;
	struct batch_call *bcs = xcalloc(nbatches + 1, sizeof(*bcs));
	pthread_t *tids = xcalloc(nbatches + 1, sizeof(*tids));
	bool *threaded = xcalloc(nbatches + 1, sizeof(*threaded));
	cables_status st = CABLES_OK;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		answers[i] = KEYD_OUTCOME_NONE;
		if (found != NULL) {
			found[i].n = 0;
			found[i].reason[0] = '\0';
			found[i].encrypting = KEYD_ENCRYPTING_NO;
			found[i].since = 0;
		}
	}
	/* The batches side by side: keyd answers each within LookupTimeout, so the whole message waits no longer. */
	for (size_t b = 0; b < nbatches; b++) {
		struct batch_call *bc = &bcs[b];

		bc->socket_path = socket_path;
		bc->addrs = addrs + b * KEYD_BATCH_MAX;
		bc->n = n - b * KEYD_BATCH_MAX < KEYD_BATCH_MAX ? n - b * KEYD_BATCH_MAX : KEYD_BATCH_MAX;
		bc->timeout_ms = timeout_ms;
		bc->answers = answers + b * KEYD_BATCH_MAX;
		bc->found = found != NULL ? found + b * KEYD_BATCH_MAX : NULL;
		threaded[b] = nbatches > 1 && pthread_create(&tids[b], NULL, batch_call_run, bc) == 0;
		if (!threaded[b])
			batch_call_run(bc);
	}
	for (size_t b = 0; b < nbatches; b++) {
		struct batch_call *bc = &bcs[b];

		if (threaded[b])
			pthread_join(tids[b], NULL);
		if (bc->st != CABLES_OK) {
			/* This batch's addresses only: cables-keyd could not answer for them. */
			log_warnx("key lookup of %zu address%s: %s", bc->n, bc->n == 1 ? "" : "es", bc->err.msg);
			if (failed++ == 0)
				st = cables_fail(err, bc->st, "%s", bc->err.msg);
			for (size_t i = 0; i < bc->n; i++)
				bc->answers[i] = KEYD_OUTCOME_TEMPFAIL;
			if (why[0] == '\0')
				snprintf(why, why_len, "%s", bc->err.msg);
		} else if (why[0] == '\0' && bc->why[0] != '\0') {
			snprintf(why, why_len, "%s", bc->why);
		}
	}
	free(bcs);
	free(tids);
	free(threaded);
	/* Some batches answered: the others' addresses are temporary failures, each for itself. */
	return failed == nbatches && nbatches > 0 ? st : CABLES_OK;
}

cables_status
keyd_check_address(const char *socket_path, const char *addr, unsigned long timeout_ms, struct keyd_check *out,
    struct cables_err *err)
{
	struct keyd_check_reply r = { NULL, 0 };
	struct buf req, reply;
	cables_status st;

	memset(out, 0, sizeof(*out));
	buf_init(&req);
	buf_init(&reply);
	if ((st = keyd_check_request_format(&req, &addr, 1, err)) == CABLES_OK &&
	    (st = keyd_call(socket_path, &req, timeout_ms, &reply, err)) == CABLES_OK &&
	    (st = keyd_check_reply_parse(reply.data, reply.len, &r, err)) == CABLES_OK) {
		if (r.n != 1)
			st = cables_fail(err, CABLES_ERR_SYNTAX, "cables-keyd: %zu answers to a check of one address", r.n);
		else
			*out = r.checks[0];
	}
	keyd_check_reply_release(&r);
	buf_release(&req);
	buf_release(&reply);
	return st;
}
