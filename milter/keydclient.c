/* keydclient - asking cables-keyd; see keydclient.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keydclient.h"
#include "keydproto.h"
#include "util.h"

/* One request of at most KEYD_BATCH_MAX addresses, asked on a connection (and a thread) of its own. */
struct batch_call {
	const char *socket_path;
	const char *const *addrs;
	size_t n;
	unsigned long timeout_ms;
	enum keyd_answer *answers;
	struct keyd_found *found;	/* may be NULL */
	char why[CABLES_ERR_MAX];
	struct cables_err err;
	cables_status st;
};

/* The reply to one lookup request: "key=" lines, then "result=ADDRESS OUTCOME [reason=...]" per address, in order. */
static cables_status
parse_reply(struct batch_call *bc, char *reply)
{
	for (size_t i = 0, off = 0; i < bc->n; i++) {
		char *line = strstr(reply + off, "result="), *word;
		struct keyd_found *found = bc->found != NULL ? &bc->found[i] : NULL;
		size_t len;

		if (line == NULL)
			return cables_fail(&bc->err, CABLES_ERR_SYNTAX, "cables-keyd: %zu results for %zu addresses", i, bc->n);
		len = strcspn(line, "\n");
		/* The "key=... fingerprint=FPR ..." lines before it are this address's keys. */
		for (char *k = reply + off; found != NULL && (k = strstr(k, "key=")) != NULL && k < line; k++) {
			char *f = strstr(k, " fingerprint="), *nl = strchr(k, '\n');
			size_t flen;

			if (f == NULL || f > line || (nl != NULL && f > nl) || found->n == KEYD_FOUND_MAX)
				continue;
			f += 13;
			flen = strcspn(f, " \n");
			if (flen > 0 && flen < sizeof(found->fpr[0])) {
				memcpy(found->fpr[found->n], f, flen);
				found->fpr[found->n++][flen] = '\0';
			}
		}
		off = (size_t)(line - reply) + len;
		line[len] = '\0';
		word = strchr(line + 7, ' ');
		word = word != NULL ? word + 1 : "";
		if (found != NULL && strncmp(word, "none reason=", 12) == 0)
			snprintf(found->reason, sizeof(found->reason), "%s", word + 12);
		if (strncmp(word, "found", 5) == 0 && (word[5] == '\0' || word[5] == ' ')) {
			bc->answers[i] = KEYD_ANSWER_FOUND;
		} else if (strncmp(word, "reject", 6) == 0 && (word[6] == '\0' || word[6] == ' ')) {
			bc->answers[i] = KEYD_ANSWER_REJECT;
			if (bc->why[0] == '\0')
				snprintf(bc->why, sizeof(bc->why), "%s", line + 7);
		} else if (strncmp(word, "tempfail", 8) == 0 && (word[8] == '\0' || word[8] == ' ')) {
			bc->answers[i] = KEYD_ANSWER_TEMPFAIL;
			if (bc->why[0] == '\0')
				snprintf(bc->why, sizeof(bc->why), "%s", line + 7);
		}
		line[len] = '\n';
	}
	return CABLES_OK;
}

static void *
batch_call_run(void *arg)
{
	struct batch_call *bc = arg;
	struct buf req, reply;

	buf_init(&req);
	buf_init(&reply);
	buf_appends(&req, "request=lookup\n");
	for (size_t i = 0; i < bc->n; i++)
		buf_printf(&req, "address=%s\n", bc->addrs[i]);
	buf_appends(&req, "\n");
	if ((bc->st = keyd_call(bc->socket_path, &req, bc->timeout_ms, &reply, &bc->err)) == CABLES_OK) {
		if (strncmp(reply.data, "error=", 6) == 0)
			bc->st = cables_fail(&bc->err, CABLES_ERR_SYNTAX, "cables-keyd refused the request: %.*s",
			    (int)strcspn(reply.data + 6, "\n"), reply.data + 6);
		else
			bc->st = parse_reply(bc, reply.data);
	}
	buf_release(&req);
	buf_release(&reply);
	return NULL;
}

cables_status
keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_answer *answers, struct keyd_found *found, char *why, size_t why_len, struct cables_err *err)
{
	size_t nbatches = (n + KEYD_BATCH_MAX - 1) / KEYD_BATCH_MAX, failed = 0;
	struct batch_call *bcs = xcalloc(nbatches + 1, sizeof(*bcs));
	pthread_t *tids = xcalloc(nbatches + 1, sizeof(*tids));
	bool *threaded = xcalloc(nbatches + 1, sizeof(*threaded));
	cables_status st = CABLES_OK;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		answers[i] = KEYD_ANSWER_NONE;
		if (found != NULL) {
			found[i].n = 0;
			found[i].reason[0] = '\0';
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
			if (failed++ == 0)
				st = cables_fail(err, bc->st, "%s", bc->err.msg);
			for (size_t i = 0; i < bc->n; i++)
				bc->answers[i] = KEYD_ANSWER_TEMPFAIL;
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
