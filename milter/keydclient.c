/* keydclient - asking cables-keyd; see keydclient.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "keydclient.h"
#include "keydproto.h"
#include "util.h"

cables_status
keyd_ask(const char *socket_path, const char *const *addrs, size_t n, unsigned long timeout_ms,
    enum keyd_answer *answers, struct keyd_found *found, char *why, size_t why_len, struct cables_err *err)
{
	struct buf req, reply;
	cables_status st;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		answers[i] = KEYD_ANSWER_NONE;
		if (found != NULL) {
			found[i].n = 0;
			found[i].reason[0] = '\0';
		}
	}
	buf_init(&req);
	buf_init(&reply);
	buf_appends(&req, "request=lookup\n");
	for (size_t i = 0; i < n; i++)
		buf_printf(&req, "address=%s\n", addrs[i]);
	buf_appends(&req, "\n");
	if ((st = keyd_call(socket_path, &req, timeout_ms, &reply, err)) != CABLES_OK)
		goto out;
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
		/* The "key=... fingerprint=FPR ..." lines before it are this address's keys. */
		for (char *k = reply.data + off; found != NULL && (k = strstr(k, "key=")) != NULL && k < line; k++) {
			char *f = strstr(k, " fingerprint="), *nl = strchr(k, '\n');
			size_t flen;

			if (f == NULL || f > line || (nl != NULL && f > nl) || found[i].n == KEYD_FOUND_MAX)
				continue;
			f += 13;
			flen = strcspn(f, " \n");
			if (flen > 0 && flen < sizeof(found[i].fpr[0])) {
				memcpy(found[i].fpr[found[i].n], f, flen);
				found[i].fpr[found[i].n++][flen] = '\0';
			}
		}
		off = (size_t)(line - reply.data) + len;
		line[len] = '\0';
		word = strchr(line + 7, ' ');
		word = word != NULL ? word + 1 : "";
		if (found != NULL && strncmp(word, "none reason=", 12) == 0)
			snprintf(found[i].reason, sizeof(found[i].reason), "%s", word + 12);
		if (strncmp(word, "found", 5) == 0 && (word[5] == '\0' || word[5] == ' ')) {
			answers[i] = KEYD_ANSWER_FOUND;
		} else if (strncmp(word, "reject", 6) == 0 && (word[6] == '\0' || word[6] == ' ')) {
			answers[i] = KEYD_ANSWER_REJECT;
			if (why[0] == '\0')
				snprintf(why, why_len, "%s", line + 7);
		} else if (strncmp(word, "tempfail", 8) == 0 && (word[8] == '\0' || word[8] == ' ')) {
			answers[i] = KEYD_ANSWER_TEMPFAIL;
			if (why[0] == '\0')
				snprintf(why, why_len, "%s", line + 7);
		}
		line[len] = '\n';
	}
out:
	buf_release(&req);
	buf_release(&reply);
	return st;
}
