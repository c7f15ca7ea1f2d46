/*
 * fake_smtp - a scripted SMTP server for the unit tests of re-injection:
 * it listens on 127.0.0.1 on an ephemeral port, answers each step with a
 * reply the test chose (or a plausible default), and records every
 * command line and the DATA section of each session, byte for byte.
 *
 * It runs in a thread of the test.  fake_smtp_new() binds and listens, so
 * the port is known (and connections queue) before fake_smtp_serve()
 * starts answering.  The sessions may only be read after fake_smtp_stop(),
 * which joins the thread.  A reply may be several lines; FAKE_SMTP_CLOSE
 * closes the connection instead, FAKE_SMTP_SILENT never answers (until
 * the client gives up).  With scripted_from, earlier sessions get the
 * defaults: the first copies are queued, a later one is refused.
 */
#ifndef CABLES_TEST_FAKE_SMTP_H
#define CABLES_TEST_FAKE_SMTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum smtp_step {
	SMTP_GREETING, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_DOT, SMTP_QUIT, SMTP_STEPS
};

#define FAKE_SMTP_CLOSE "<close>"
#define FAKE_SMTP_SILENT "<silent>"
#define FAKE_SMTP_SESSIONS 8

/* EHLO replies: everything a Postfix smtpd announces, and a bare one. */
#define FAKE_SMTP_EHLO_FULL "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n" \
	"250-DSN\r\n250 SMTPUTF8\r\n"
#define FAKE_SMTP_EHLO_BARE "250-fake.test\r\n250 PIPELINING\r\n"

struct fake_smtp_session {
	struct buf commands;	/* command lines as received, CRLF included */
	struct buf data;	/* after the 354: every byte up to and including ".\r\n" */
	bool quit;
};

struct fake_smtp {
	int port;
	char target[64];	/* "inet:PORT@127.0.0.1" */
	const char *reply[SMTP_STEPS];	/* NULL: the default for the step */
	size_t scripted_from;	/* the replies apply from this session on (1-based; 0: all) */
	struct fake_smtp_session session[FAKE_SMTP_SESSIONS];
	size_t nsessions;
	/* private */
	int listen_fd;
	int stop[2];
	bool running;
	pthread_t thread;
};

struct fake_smtp *fake_smtp_new(void);
void fake_smtp_serve(struct fake_smtp *s);
void fake_smtp_stop(struct fake_smtp *s);
void fake_smtp_free(struct fake_smtp *s);

/* The DATA section of a session as the message it carries: dot-stuffing undone, the final ".\r\n" removed. */
char *fake_smtp_message(const struct fake_smtp_session *ss, size_t *len);

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
int fake_smtp_closed_port(void);

#endif
