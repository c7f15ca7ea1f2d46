/*
 * keyctl_held - "cables-keyctl held [list]", "held show ID", "held release
 * ID", "held return ID": the messages On-KeyNotFound hold keeps
 * (doc/hold.md), read from the key store.  release checks the waiting
 * recipients' keys through cables-keyd at once and, only when every one has
 * a key, hands the message to cables-milter, which resubmits it (and
 * decides again then: never plaintext); a message still without a key
 * stays held, and the command says why and exits 1.  return has the milter
 * send the message back to its sender now.  Both wait for the milter (it
 * alone can open a held message: heldseal.h) up to WAIT_FOR_MILTER seconds.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "held.h"
#include "keyctl.h"
#include "keydproto.h"
#include "util.h"

#define WAIT_FOR_MILTER 60

/* cables-keyd's lookup, as held_try()'s key check: a key of the recipient's Format, as keyd's. */
static bool
has_key(void *arg, const char *addr, char *why, size_t why_len)
{
	const struct ctx *c = arg;
	enum key_format want = (enum key_format)policy_get(&c->cfg->policy, addr, PA_FORMAT, NULL);
	struct keyd_lookup_reply answer = { NULL, 0 };
	struct buf req, reply;
	struct cables_err err;
	bool found = false;

	buf_init(&req);
	buf_init(&reply);
	if (c->cfg->keyd_socket == NULL)
		snprintf(why, why_len, "KeydSocket is none: no cables-keyd to ask");
	else if (keyd_lookup_request_format(&req, &addr, 1, &err) != CABLES_OK ||
	    keyd_call(c->cfg->keyd_socket, &req, c->cfg->lookup_timeout_ms * 2 + 1000, &reply, &err) != CABLES_OK ||
	    keyd_lookup_reply_parse(reply.data, reply.len, &answer, &err) != CABLES_OK)
		snprintf(why, why_len, "%s", err.msg);
	else
		found = held_reply_has_key(&answer, want, time(NULL), why, why_len);
	keyd_lookup_reply_release(&answer);
	buf_release(&req);
	buf_release(&reply);
	return found;
}

static void
when(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* The waiting lines, "ADDRESS<TAB>why", as "  ADDRESS: why". */
static void
print_waiting(const char *waiting)
{
	for (const char *p = waiting; *p != '\0'; p++) {
		if (p == waiting || p[-1] == '\n')
			fputs("  ", stdout);
		if (*p == '\t')
			fputs(": ", stdout);
		else
			putchar((unsigned char)*p >= ' ' || *p == '\n' ? *p : '?');
	}
}

/*
 * s as printed: a control character is '?', so that a row cables-keyd
 * wrote (it writes the store) cannot move the cursor or redraw a line on
 * the administrator's terminal.  Returns buf.
 */
static const char *
clean(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s != NULL && *s != '\0' && i + 1 < len; s++)
		buf[i++] = (unsigned char)*s < ' ' || *s == 0x7f ? '?' : *s;
	buf[i] = '\0';
	return buf;
}

static int
held_list(struct ctx *c)
{
	struct held_record *list;
	struct cables_err err;
	size_t n;
	char at[32], next[32], a[32], b[80], d[300], e[16];

	if (keystore_held_list(c->ks, HELD_ALL, c->now, &list, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		const struct held_record *h = &list[i];
		long long left = h->held_at + (long long)(c->cfg->hold_time_ms / 1000) - (long long)c->now;

		when(h->held_at, at, sizeof(at));
		when(h->next_try, next, sizeof(next));
		printf("%s queue=%s from=<%s> held=%s next-try=%s tries=%d returned-in=%llds%s%s%s\n", clean(h->id, a, sizeof(a)),
		    clean(h->queue_id, b, sizeof(b)), clean(h->sender, d, sizeof(d)), at, next, h->tries, left > 0 ? left : 0,
		    h->action[0] != '\0' ? " milter-to=" : "", clean(h->action, e, sizeof(e)),
		    h->sealed ? "" : " [IN THE CLEAR: never sent]");
		print_waiting(h->waiting);
	}
	printf("%zu held message%s\n", n, n == 1 ? "" : "s");
	held_list_release(list, n);
	return 0;
}

static int
held_show(struct ctx *c, const char *id)
{
	struct held_record h;
	struct cables_err err;
	char at[32], next[32], st[32], ac[16], q[80], snd[300], lg[300], le[CABLES_ERR_MAX];

	if (keystore_held_get(c->ks, id, false, &h, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	when(h.held_at, at, sizeof(at));
	when(h.next_try, next, sizeof(next));
	printf("id: %s\nstate: %s%s%s\nqueue id: %s\nsender: <%s>\nheld: %s UTC\nnext try: %s UTC\ntries: %d\n"
	    "notify sender: %s\nmessage: %s\nrecipients:\n", h.id, clean(h.state, st, sizeof(st)),
	    h.action[0] != '\0' ? ", cables-milter to " : "", clean(h.action, ac, sizeof(ac)),
	    clean(h.queue_id, q, sizeof(q)), clean(h.sender, snd, sizeof(snd)), at, next, h.tries,
	    h.notify ? (h.notified ? "yes (told)" : "yes") : "no",
	    h.sealed ? "sealed for cables-milter (only it and the keyholder can open it)" : "IN THE CLEAR: never sent "
	    "(held before schema 5, or written by cables-keyd); remove it with cables-keyctl held delete");
	print_waiting(h.recipients);
	printf("waiting for keys:\n");
	print_waiting(h.waiting);
	if (h.auth_login != NULL && h.auth_login[0] != '\0')
		printf("submitted by: %s (SASL login)\n", clean(h.auth_login, lg, sizeof(lg)));
	if (h.last_error != NULL)
		printf("last error: %s\n", clean(h.last_error, le, sizeof(le)));
	held_record_release(&h);
	return 0;
}

/*
 * The milter acts on a handed-over record within a second or so: say what
 * it did (released, returned, held again, failed), or that it has not yet.
 */
static int
wait_for_milter(struct ctx *c, const char *id, bool releasing)
{
	struct held_record h;
	struct cables_err err;
	cables_status st;
	int tries = -1;

	for (int i = 0; i < WAIT_FOR_MILTER * 5; i++) {
		if ((st = keystore_held_get(c->ks, id, false, &h, &err)) == CABLES_ERR_NOTFOUND) {
			printf("%s: returned: sent back to its sender by cables-milter\n", id);
			return 0;
		}
		if (st != CABLES_OK)
			keyctl_die("%s", err.msg);
		if (tries < 0)
			tries = h.tries;
		if (strcmp(h.state, "released") == 0) {
			printf("%s: %s by cables-milter\n", id, releasing ? "released: resubmitted, encrypted," :
			    "returned: sent back to its sender");
			held_record_release(&h);
			return 0;
		}
		if (h.action[0] == '\0') {
			printf("%s: held again: a recipient's key was missing when the milter decided on the resubmitted "
			    "copy\n", id);
			held_record_release(&h);
			return 1;
		}
		if (h.tries != tries) {
			printf("%s: failed: %s (cables-milter tries again later)\n", id, h.last_error != NULL ?
			    h.last_error : "?");
			held_record_release(&h);
			return 1;
		}
		held_record_release(&h);
		usleep(200 * 1000);
	}
	printf("%s: handed to cables-milter, which has not %s it within %d seconds (is it running?); it will "
	    "when it can\n", id, releasing ? "resubmitted" : "returned", WAIT_FOR_MILTER);
	return 1;
}

/*
 * Remove a row in the clear (held before schema 5, or written by keyd):
 * nothing sends one.  A sealed message is never just deleted: held return
 * gives it back to its sender.
 */
static int
held_delete(struct ctx *c, const char *id)
{
	struct held_record h;
	struct cables_err err;
	bool sealed;

	if (keystore_held_get(c->ks, id, false, &h, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	sealed = h.sealed;
	held_record_release(&h);
	if (sealed)
		keyctl_die("message %s is sealed: it is returned to its sender with cables-keyctl held return %s, "
		    "never just deleted", id, id);
	if (keystore_held_delete(c->ks, id, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	printf("%s: deleted (it was in the clear, never sent)\n", id);
	return 0;
}

int
keyctl_held(struct ctx *c, int argc, char **argv)
{
	const char *sub = argc >= 2 ? argv[1] : "list";
	char host[256] = "localhost";
	struct held_env env;
	struct held_result res;
	struct cables_err err;
	cables_status st;

	open_store(c, false);
	if (strcmp(sub, "list") == 0) {
		if (argc > 2)
			keyctl_usage("held list takes no arguments");
		return held_list(c);
	}
	if (strcmp(sub, "show") != 0 && strcmp(sub, "release") != 0 && strcmp(sub, "return") != 0 &&
	    strcmp(sub, "delete") != 0)
		keyctl_usage("held: unknown subcommand '%s' (list, show, release, return or delete)", sub);
	if (argc != 3)
		keyctl_usage("held %s needs exactly one ID", sub);
	if (strlen(argv[2]) != KEYSTORE_HELD_ID_LEN || strspn(argv[2], "0123456789abcdef") != KEYSTORE_HELD_ID_LEN)
		keyctl_die("'%s' is not a held message's ID (%d hex digits; see cables-keyctl held list)", argv[2],
		    KEYSTORE_HELD_ID_LEN);
	if (strcmp(sub, "show") == 0)
		return held_show(c, argv[2]);
	if (strcmp(sub, "delete") == 0)
		return held_delete(c, argv[2]);
	gethostname(host, sizeof(host) - 1);
	env = (struct held_env){ c->ks, c->cfg->mail_command, host, (long long)(c->cfg->hold_time_ms / 1000),
	    has_key, c, NULL, NULL, 0 };
	if (strcmp(sub, "return") == 0)
		st = held_return(&env, argv[2], &res, &err);
	else
		st = held_try(&env, argv[2], c->now, &res, &err);
	if (st != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (res.outcome != HELD_TO_RELEASE && res.outcome != HELD_TO_RETURN) {
		printf("%s: %s: %s\n", argv[2], held_outcome_name(res.outcome), res.detail);
		return 1;
	}
	return wait_for_milter(c, argv[2], res.outcome == HELD_TO_RELEASE);
}
