/*
 * test_reinject - the SMTP client that hands copies back to the MTA, run
 * against a scripted server in a thread (fake_smtp.h), and the marker that
 * lets the milter recognise its own copies.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_smtp.h"
#include "helpers.h"
#include "reinject.h"

#define NOW ((time_t)1790000000)

static char *tmp;

static int
group_setup(void **state)
{
	tmp = test_tempdir();
	return 0;
}

static int
group_teardown(void **state)
{
	test_rmdir(tmp);
	free(tmp);
	return 0;
}

static struct spool *
spool_of(const char *text, size_t len)
{
	struct spool *sp = spool_new(tmp, SPOOL_MEMORY_LIMIT, 0);

	assert_int_equal(spool_append(sp, text, len, NULL), CABLES_OK);
	return sp;
}

/* ---- the SMTP client ---- */

/* Original header fields as the milter spools them: X-Cables, the marker and content fields among others. */
static const char original_fields[] =
    "Received: from client.a.test\r\n\tby mx.a.test; Mon, 1 Sep 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@a.test>\r\n"
    "X-Cables: decrypted; format=smime; signature=valid; signer=ceo@a.test\r\n"
    "To: bob@b.test, carol@c.test\r\n"
    "x-cables: forged again\r\n"
    "X-Cables-Reinjected: v1 t=1 n=0011223344556677 h=00\r\n"
    "X-Cables-Other: not ours to remove\r\n"
    "Subject: hello\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain;\r\n\tcharset=utf-8\r\n"
    "content-transfer-encoding: 8bit\r\n"
    "X-Mailer: after the content fields\r\n";

/* The same minus X-Cables fields and markers, with or without the content fields. */
static const char kept_fields[] =
    "Received: from client.a.test\r\n\tby mx.a.test; Mon, 1 Sep 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@a.test>\r\n"
    "To: bob@b.test, carol@c.test\r\n"
    "X-Cables-Other: not ours to remove\r\n"
    "Subject: hello\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain;\r\n\tcharset=utf-8\r\n"
    "content-transfer-encoding: 8bit\r\n"
    "X-Mailer: after the content fields\r\n";
static const char kept_fields_without_content[] =
    "Received: from client.a.test\r\n\tby mx.a.test; Mon, 1 Sep 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@a.test>\r\n"
    "To: bob@b.test, carol@c.test\r\n"
    "X-Cables-Other: not ours to remove\r\n"
    "Subject: hello\r\n"
    "X-Mailer: after the content fields\r\n";

static const struct reinject_rcpt two_rcpts[] = {
	{ "bob@b.test", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@b.test" },
	{ "carol@c.test", NULL },
};

/* A copy from alice to two_rcpts: the fields above, body as given (NULL: "Hi.\r\n"). */
struct copy_case {
	struct spool *headers;
	struct entity_src body;
	struct reinject_copy copy;
};

static void
copy_case_init(struct copy_case *cc, const struct entity_src *body)
{
	memset(cc, 0, sizeof(*cc));
	cc->headers = spool_of(original_fields, strlen(original_fields));
	entity_src_init(&cc->body);
	if (body != NULL)
		cc->body = *body;
	else
		entity_src_mem(&cc->body, "Hi.\r\n", 5);
	cc->copy.sender = "alice@a.test";
	cc->copy.mail_esmtp = "RET=HDRS ENVID=QQ314159 BODY=8BITMIME SMTPUTF8";
	cc->copy.rcpts = two_rcpts;
	cc->copy.nrcpts = 2;
	cc->copy.headers = cc->headers;
	cc->copy.body = &cc->body;
}

static void
copy_case_release(struct copy_case *cc)
{
	spool_free(cc->headers);
}

/* Send cc's copy to a server with these replies (NULL: defaults); the server is stopped on return. */
static cables_status
send_to(struct fake_smtp *s, const struct copy_case *cc, int timeout, char *qid, size_t qlen,
    struct cables_err *err)
{
	cables_status st;

	fake_smtp_serve(s);
	st = reinject_send(s->target, &cc->copy, timeout, qid, qlen, err);
	fake_smtp_stop(s);
	return st;
}

/* What the first session received ("" when nothing). */
static const char *
commands_of(const struct fake_smtp *s)
{
	return s->session[0].commands.data != NULL ? s->session[0].commands.data : "";
}

static void
test_a_full_dialog_sends_the_copy_byte_for_byte(void **state)
{
	/* Lines that start with a dot, one split across pieces, a lone dot, and no final line break. */
	static const char *const pieces[] = {
		".starts with a dot\r\nplain\r\n", "..two dots\r\n", "ends a piece\r\n", ".", "continues the line\r\n",
		".\r\n", "a dot . inside\r\n.. \r\n", "no final line break",
	};
	static const char stuffed_body[] =
	    "..starts with a dot\r\nplain\r\n...two dots\r\nends a piece\r\n..continues the line\r\n"
	    "..\r\na dot . inside\r\n... \r\nno final line break\r\n";
	struct fake_smtp *s = fake_smtp_new();
	struct entity_src body;
	struct copy_case cc;
	struct buf first, content, expect;
	struct cables_err err;
	char qid[64];

	entity_src_init(&body);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		entity_src_mem(&body, pieces[i], strlen(pieces[i]));
	copy_case_init(&cc, &body);
	buf_init(&first);
	buf_init(&content);
	buf_init(&expect);
	buf_appends(&first, "X-Cables: encrypted; format=smime\r\nX-Cables-Reinjected: v1 t=2 n=ffff h=ff\r\n");
	buf_appends(&content, "Content-Type: application/pkcs7-mime; name=smime.p7m\r\nMIME-Version: 1.0\r\n");
	cc.copy.first = &first;
	cc.copy.content = &content;
	cc.copy.drop_content_fields = true;
	if (send_to(s, &cc, 10, qid, sizeof(qid), &err) != CABLES_OK)
		fail_msg("reinject_send: %s", err.msg);
	assert_string_equal(qid, "FAKE1");
	assert_int_equal(s->nsessions, 1);
	assert_string_equal(s->session[0].commands.data,
	    "EHLO cables-reinject\r\n"
	    "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ314159 BODY=8BITMIME SMTPUTF8\r\n"
	    "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@b.test\r\n"
	    "RCPT TO:<carol@c.test>\r\n"
	    "DATA\r\n"
	    "QUIT\r\n");
	assert_true(s->session[0].quit);
	/* First the fields put first, then the original ones, the copy's content fields, the body, the dot. */
	buf_append(&expect, first.data, first.len);
	buf_appends(&expect, kept_fields_without_content);
	buf_append(&expect, content.data, content.len);
	buf_appends(&expect, "\r\n");
	buf_appends(&expect, stuffed_body);
	buf_appends(&expect, ".\r\n");
	assert_int_equal(s->session[0].data.len, expect.len);
	assert_string_equal(s->session[0].data.data, expect.data);
	buf_release(&first);
	buf_release(&content);
	buf_release(&expect);
	copy_case_release(&cc);
	fake_smtp_free(s);
}

static void
test_original_content_fields_stay_unless_the_copy_brings_its_own(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct copy_case cc;
	struct cables_err err;
	char qid[64], *expect;

	copy_case_init(&cc, NULL);
	assert_int_equal(send_to(s, &cc, 10, qid, sizeof(qid), &err), CABLES_OK);
	/* No first or content buffers: the original fields (X-Cables and markers still go), a body ending in CRLF. */
	expect = xasprintf("%s\r\nHi.\r\n.\r\n", kept_fields);
	assert_string_equal(s->session[0].data.data, expect);
	free(expect);
	copy_case_release(&cc);
	fake_smtp_free(s);
}

static void
test_an_empty_body_ends_right_after_the_header(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct entity_src body;
	struct copy_case cc;
	struct cables_err err;
	char qid[64], *expect;

	entity_src_init(&body);
	copy_case_init(&cc, &body);
	assert_int_equal(send_to(s, &cc, 10, qid, sizeof(qid), &err), CABLES_OK);
	expect = xasprintf("%s\r\n.\r\n", kept_fields);
	assert_string_equal(s->session[0].data.data, expect);
	free(expect);
	copy_case_release(&cc);
	fake_smtp_free(s);
}

static void
test_a_large_body_from_disk_is_stuffed_across_every_buffer(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct spool *sp = spool_new(tmp, SPOOL_MEMORY_LIMIT, 0);
	struct entity_src body;
	struct copy_case cc;
	struct buf raw, expect;
	struct cables_err err;
	char qid[64];
	size_t len;
	char *got;

	/* Dotted lines of every length, so that dots fall on every chunk and buffer boundary. */
	buf_init(&raw);
	buf_init(&expect);
	buf_appends(&expect, kept_fields);
	buf_appends(&expect, "\r\n");
	for (size_t i = 0; raw.len < 300 * 1024; i++) {
		char line[200];
		int n = snprintf(line, sizeof(line), ".%0*zu\r\n", (int)(i % 150), i);

		buf_append(&raw, line, (size_t)n);
		buf_append(&expect, ".", 1);
		buf_append(&expect, line, (size_t)n);
	}
	buf_appends(&expect, ".\r\n");
	assert_int_equal(spool_append(sp, raw.data, raw.len, NULL), CABLES_OK);
	assert_true(spool_on_disk(sp));
	entity_src_init(&body);
	entity_src_spool(&body, sp, 0, -1);
	copy_case_init(&cc, &body);
	assert_int_equal(send_to(s, &cc, 10, qid, sizeof(qid), &err), CABLES_OK);
	assert_int_equal(s->session[0].data.len, expect.len);
	assert_memory_equal(s->session[0].data.data, expect.data, expect.len);
	/* And the server's view of it, stuffing undone, is the body. */
	got = fake_smtp_message(&s->session[0], &len);
	assert_int_equal(len, strlen(kept_fields) + 2 + raw.len);
	assert_memory_equal(got + strlen(kept_fields) + 2, raw.data, raw.len);
	free(got);
	buf_release(&raw);
	buf_release(&expect);
	spool_free(sp);
	copy_case_release(&cc);
	fake_smtp_free(s);
}

static void
test_parameters_go_only_to_a_server_that_announced_them(void **state)
{
	static const struct {
		const char *what, *ehlo, *mail, *rcpt;
	} cases[] = {
		{ "everything", FAKE_SMTP_EHLO_FULL,
		    "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ314159 BODY=8BITMIME SMTPUTF8\r\n",
		    "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@b.test\r\n" },
		{ "nothing", FAKE_SMTP_EHLO_BARE, "MAIL FROM:<alice@a.test>\r\n", "RCPT TO:<bob@b.test>\r\n" },
		{ "DSN only", "250-fake.test\r\n250 DSN\r\n", "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ314159\r\n",
		    "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@b.test\r\n" },
		{ "DSN first", "250-fake.test\r\n250-DSN\r\n250 SIZE 1000\r\n",
		    "MAIL FROM:<alice@a.test> RET=HDRS ENVID=QQ314159\r\n",
		    "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@b.test\r\n" },
		{ "8BITMIME only", "250-fake.test\r\n250 8BITMIME\r\n", "MAIL FROM:<alice@a.test> BODY=8BITMIME\r\n",
		    "RCPT TO:<bob@b.test>\r\n" },
		{ "SMTPUTF8 only", "250-fake.test\r\n250 SMTPUTF8\r\n", "MAIL FROM:<alice@a.test> SMTPUTF8\r\n",
		    "RCPT TO:<bob@b.test>\r\n" },
		{ "the word DSN elsewhere", "250-fake.test\r\n250 X-NO-DSN-HERE\r\n", "MAIL FROM:<alice@a.test>\r\n",
		    "RCPT TO:<bob@b.test>\r\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		char qid[64], *expect;

		copy_case_init(&cc, NULL);
		s->reply[SMTP_EHLO] = cases[i].ehlo;
		if (send_to(s, &cc, 10, qid, sizeof(qid), &err) != CABLES_OK)
			fail_msg("case '%s': %s", cases[i].what, err.msg);
		expect = xasprintf("EHLO cables-reinject\r\n%s%sRCPT TO:<carol@c.test>\r\nDATA\r\nQUIT\r\n",
		    cases[i].mail, cases[i].rcpt);
		if (strcmp(s->session[0].commands.data, expect) != 0)
			fail_msg("case '%s': sent\n%s", cases[i].what, s->session[0].commands.data);
		free(expect);
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_the_null_sender_and_no_parameters(void **state)
{
	struct fake_smtp *s = fake_smtp_new();
	struct copy_case cc;
	struct cables_err err;
	char qid[64];

	copy_case_init(&cc, NULL);
	cc.copy.sender = "";
	cc.copy.mail_esmtp = NULL;
	assert_int_equal(send_to(s, &cc, 10, qid, sizeof(qid), &err), CABLES_OK);
	assert_non_null(strstr(s->session[0].commands.data, "\r\nMAIL FROM:<>\r\nRCPT TO:<bob@b.test> NOTIFY="));
	copy_case_release(&cc);
	fake_smtp_free(s);
}

static void
test_the_queue_id_is_what_the_server_said(void **state)
{
	static const struct { const char *reply, *qid; size_t qlen; } cases[] = {
		{ "250 2.0.0 Ok: queued as 4Zx9Kq1Bc2z3\r\n", "4Zx9Kq1Bc2z3", 64 },
		{ "250 2.0.0 Ok: queued as ABC123 (and more)\r\n", "ABC123", 64 },
		{ "250-one\r\n250 Ok: queued as LAST7\r\n", "LAST7", 64 },
		{ "250 Ok\r\n", "", 64 },
		{ "250 Ok: queued as 0123456789012345678901234567890123456789\r\n", "0123456789", 11 },
		/* Sendmail's wording. */
		{ "250 2.0.0 6B3DvgVh019675 Message accepted for delivery\r\n", "6B3DvgVh019675", 64 },
		{ "250 6B3DvgVh019675 Message accepted for delivery\r\n", "6B3DvgVh019675", 64 },
		{ "250 2.0.0 6B3DvgVh019675 Message accepted for delivery\r\n", "6B3D", 5 },
		{ "250 2.0.0 Message accepted for delivery\r\n", "", 64 },
		{ "250 2.0.0 6B3D/../x Message accepted for delivery\r\n", "", 64 },
		{ "250 2.0.0 ID accepted\r\n", "", 64 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		char qid[64];

		copy_case_init(&cc, NULL);
		s->reply[SMTP_DOT] = cases[i].reply;
		memset(qid, 'x', sizeof(qid));
		assert_int_equal(send_to(s, &cc, 10, qid, cases[i].qlen, &err), CABLES_OK);
		assert_string_equal(qid, cases[i].qid);
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_a_refusal_at_any_step_fails_and_names_the_step(void **state)
{
	static const struct {
		enum smtp_step step;
		const char *reply, *msg;
		bool data_sent;
	} cases[] = {
		{ SMTP_GREETING, "554 5.3.2 not now\r\n",
		    "re-injection: greeting refused: 554 5.3.2 not now", false },
		{ SMTP_GREETING, "421-4.3.2 busy\r\n421 4.3.2 try later\r\n",
		    "re-injection: greeting refused: 421 4.3.2 try later", false },
		{ SMTP_EHLO, "502 5.5.1 no EHLO\r\n",
		    "re-injection: EHLO refused: 502 5.5.1 no EHLO", false },
		{ SMTP_EHLO, "550-5.7.1 first\r\n550 5.7.1 second\r\n",
		    "re-injection: EHLO refused: 550 5.7.1 second", false },
		{ SMTP_MAIL, "451 4.3.0 mail later\r\n",
		    "re-injection: MAIL FROM refused: 451 4.3.0 mail later", false },
		{ SMTP_RCPT, "550 5.1.1 unknown user\r\n",
		    "re-injection: RCPT TO refused: 550 5.1.1 unknown user", false },
		{ SMTP_DATA, "554 5.5.1 no valid recipients\r\n",
		    "re-injection: DATA refused: 554 5.5.1 no valid recipients", false },
		{ SMTP_DATA, "250 2.0.0 DATA is not 354\r\n",
		    "re-injection: DATA refused: 250 2.0.0 DATA is not 354", false },
		{ SMTP_DOT, "552 5.3.4 message too big\r\n",
		    "re-injection: the copy was refused: 552 5.3.4 message too big", true },
		{ SMTP_DOT, "451 4.3.0 queue file write error\r\n",
		    "re-injection: the copy was refused: 451 4.3.0 queue file write error", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		char qid[64];
		cables_status st;

		copy_case_init(&cc, NULL);
		s->reply[cases[i].step] = cases[i].reply;
		memset(&err, 0, sizeof(err));
		st = send_to(s, &cc, 10, qid, sizeof(qid), &err);
		if (st == CABLES_OK || strstr(err.msg, cases[i].msg) == NULL)
			fail_msg("case %zu: status %d, '%s'", i, st, err.msg);
		assert_string_equal(qid, "");
		assert_int_equal(s->session[0].data.len > 0, cases[i].data_sent);
		/* Nothing after a refusal: no next command. */
		if (cases[i].step == SMTP_RCPT)
			assert_null(strstr(commands_of(s), "carol"));
		if (cases[i].step < SMTP_DATA)
			assert_null(strstr(commands_of(s), "DATA"));
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_a_server_that_closes_the_connection_fails(void **state)
{
	for (enum smtp_step step = SMTP_GREETING; step <= SMTP_DOT; step++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		char qid[64];
		cables_status st;

		copy_case_init(&cc, NULL);
		s->reply[step] = FAKE_SMTP_CLOSE;
		memset(&err, 0, sizeof(err));
		st = send_to(s, &cc, 10, qid, sizeof(qid), &err);
		if (st == CABLES_OK || strstr(err.msg, "the server closed the connection") == NULL)
			fail_msg("closed at step %d: status %d, '%s'", step, st, err.msg);
		assert_string_equal(qid, "");
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_a_server_that_does_not_speak_smtp_fails(void **state)
{
	static const char *const greetings[] = { "HTTP/1.0 400 Bad Request\r\n", "2\r\n", "999 what\r\n" };

	for (size_t i = 0; i < sizeof(greetings) / sizeof(greetings[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		char qid[64];

		copy_case_init(&cc, NULL);
		s->reply[SMTP_GREETING] = greetings[i];
		assert_int_not_equal(send_to(s, &cc, 10, qid, sizeof(qid), &err), CABLES_OK);
		assert_non_null(strstr(err.msg, "does not speak SMTP"));
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_a_closed_port_fails_at_connect(void **state)
{
	struct copy_case cc;
	struct cables_err err;
	char target[64], qid[64];

	copy_case_init(&cc, NULL);
	snprintf(target, sizeof(target), "inet:%d@127.0.0.1", fake_smtp_closed_port());
	assert_int_equal(reinject_send(target, &cc.copy, 10, qid, sizeof(qid), &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, "connect: Connection refused"));
	assert_non_null(strstr(err.msg, target));
	assert_string_equal(qid, "");
	copy_case_release(&cc);
}

static void
test_a_server_that_never_answers_times_out(void **state)
{
	const enum smtp_step steps[] = { SMTP_GREETING, SMTP_DOT };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct fake_smtp *s = fake_smtp_new();
		struct copy_case cc;
		struct cables_err err;
		struct timespec t0, t1;
		char qid[64];
		double elapsed;

		copy_case_init(&cc, NULL);
		s->reply[steps[i]] = FAKE_SMTP_SILENT;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(send_to(s, &cc, 1, qid, sizeof(qid), &err), CABLES_ERR_IO);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		assert_non_null(strstr(err.msg, "timed out waiting for the server"));
		if (elapsed < 0.9 || elapsed > 5)
			fail_msg("step %d: gave up after %.2f s with a 1 s timeout", steps[i], elapsed);
		copy_case_release(&cc);
		fake_smtp_free(s);
	}
}

static void
test_a_connection_never_accepted_times_out(void **state)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct copy_case cc;
	struct cables_err err;
	char target[64], qid[64];
	int listener = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);

	/* A listener that never accepts, its queue full: the next handshake does not complete. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(listener, 0), 0);
	assert_int_equal(getsockname(listener, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
	snprintf(target, sizeof(target), "inet:%d@127.0.0.1", ntohs(sin.sin_port));
	copy_case_init(&cc, NULL);
	assert_int_equal(reinject_send(target, &cc.copy, 1, qid, sizeof(qid), &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, "connect: timed out"));
	copy_case_release(&cc);
	close(filler);
	close(listener);
}

static void
test_only_numeric_inet_targets_are_valid(void **state)
{
	static const struct { const char *spec; bool valid; } cases[] = {
		{ "inet:25@127.0.0.1", true },
		{ "inet:10026@localhost", true },
		{ "inet:65535@192.0.2.1", true },
		{ "inet:1@127.0.0.1", true },
		{ "inet6:25@::1", true },
		{ "inet6:587@localhost", true },
		{ "inet6:25@2001:db8::1", true },
		{ "inet:25@mail.example.com", false },	/* a name: never resolved */
		{ "inet:25@localhost.localdomain", false },
		{ "inet:25@", false },
		{ "inet:@127.0.0.1", false },
		{ "inet:127.0.0.1", false },
		{ "inet:25", false },
		{ "inet:0@127.0.0.1", false },
		{ "inet:65536@127.0.0.1", false },
		{ "inet:99999999999999999999@127.0.0.1", false },
		{ "inet:-25@127.0.0.1", false },
		{ "inet:+25@127.0.0.1", false },
		{ "inet: 25@127.0.0.1", false },
		{ "inet:25x@127.0.0.1", false },
		{ "inet:25@127.0.0.1 ", false },
		{ "inet:25@127.1", false },
		{ "inet:25@::1", false },
		{ "inet6:25@127.0.0.1", false },
		{ "unix:/var/run/smtpd", false },
		{ "25@127.0.0.1", false },
		{ "INET:25@127.0.0.1", false },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (reinject_target_valid(cases[i].spec) != cases[i].valid)
			fail_msg("'%s' should be %s", cases[i].spec, cases[i].valid ? "valid" : "invalid");
}

static void
test_an_invalid_target_is_refused_before_connecting(void **state)
{
	struct copy_case cc;
	struct cables_err err;
	char qid[64] = "stale";

	copy_case_init(&cc, NULL);
	assert_int_equal(reinject_send("inet:25@mx.example.com", &cc.copy, 10, qid, sizeof(qid), &err), CABLES_ERR_ARG);
	assert_string_equal(err.msg, "ReinjectTo inet:25@mx.example.com is not inet:PORT@ADDRESS");
	assert_string_equal(qid, "");
	copy_case_release(&cc);
}

/* ---- the marker ---- */

static const uint8_t key[REINJECT_KEY_LEN] = {
	0x5c, 0x11, 0x9e, 0x27, 0x3a, 0x80, 0x4f, 0xd2, 0x01, 0x66, 0xb7, 0x3c, 0x90, 0xaa, 0x12, 0x7e,
	0xe4, 0x09, 0x58, 0x31, 0xc6, 0x77, 0x2b, 0x8d, 0x40, 0x1f, 0xf3, 0x65, 0x9a, 0x0c, 0xd8, 0x23,
};
static const char body_text[] = "MIAGCSqGSIb3DQEHA6CAMIACAQAxggFe\r\n.dotted line\r\n";

/* The header block the marker helpers use, as the milter spools it. */
static const char marker_fields[] = "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the plan\r\n";

/* verify_as: the message checked, by default alice's with marker_fields. */
static const char *check_sender = "alice@a.test";
static const char *check_fields = marker_fields;

/* A marker for body_text, marker_fields and these recipients, from alice, made at now. */
static void
make_marker(const uint8_t *k, time_t now, const char *const *addrs, size_t n, char *out, size_t len)
{
	struct spool *body = spool_of(body_text, strlen(body_text));
	struct spool *fields = spool_of(marker_fields, strlen(marker_fields));
	struct reinject_received r = { "alice@a.test", addrs, n, fields, body };
	struct cables_err err;

	if (reinject_marker_for(k, now, &r, out, len, &err) != CABLES_OK)
		fail_msg("reinject_marker_for: %s", err.msg);
	spool_free(body);
	spool_free(fields);
}

static bool
verify(const uint8_t *k, const char *marker, time_t now, const char *const *addrs, size_t n, const char *body,
    size_t body_len)
{
	struct spool *sp = spool_of(body, body_len), *fields = spool_of(check_fields, strlen(check_fields));
	struct reinject_received r = { check_sender, addrs, n, fields, sp };
	struct reinject_stamp stamp;
	bool ok = reinject_marker_verify(k, marker, now, REINJECT_WINDOW, &r, &stamp);

	if (ok && (stamp.t != (long long)NOW || strstr(marker, stamp.mac) == NULL))
		fail_msg("the stamp of %s is not its time and MAC", marker);
	spool_free(sp);
	spool_free(fields);
	return ok;
}

static const char *const bob_carol[] = { "bob@b.test", "carol@c.test" };

static void
test_a_marker_verifies_for_its_recipients_and_body(void **state)
{
	char marker[200];
	long long t;
	char nonce[17], mac[65], rest;

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	assert_int_equal(sscanf(marker, "v2 t=%lld n=%16[0-9a-f] h=%64[0-9a-f]%c", &t, nonce, mac, &rest), 3);
	assert_int_equal(t, (long long)NOW);
	assert_int_equal(strlen(nonce), 16);
	assert_int_equal(strlen(mac), 64);
	assert_int_equal(strlen(marker), strlen("v2 t=1790000000 n= h=") + 16 + 64);
	assert_true(verify(key, marker, NOW, bob_carol, 2, body_text, strlen(body_text)));
	/* As a field value may come, after the colon's space. */
	{
		char *spaced = xasprintf(" \t%s", marker);

		assert_true(verify(key, spaced, NOW, bob_carol, 2, body_text, strlen(body_text)));
		free(spaced);
	}
}

static void
test_a_marker_does_not_verify_under_another_key(void **state)
{
	uint8_t other[REINJECT_KEY_LEN];
	char marker[200];

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	for (size_t i = 0; i < REINJECT_KEY_LEN; i += 31) {
		memcpy(other, key, sizeof(other));
		other[i] ^= 0x01;
		assert_false(verify(other, marker, NOW, bob_carol, 2, body_text, strlen(body_text)));
	}
}

static void
test_a_marker_does_not_verify_on_other_content(void **state)
{
	char marker[200], *changed = xstrdup(body_text), *longer = xasprintf("%s\r\n", body_text);

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	changed[5] ^= 0x20;
	assert_false(verify(key, marker, NOW, bob_carol, 2, changed, strlen(changed)));
	assert_false(verify(key, marker, NOW, bob_carol, 2, longer, strlen(longer)));
	assert_false(verify(key, marker, NOW, bob_carol, 2, body_text, strlen(body_text) - 1));
	assert_false(verify(key, marker, NOW, bob_carol, 2, "", 0));
	free(changed);
	free(longer);
}

static void
test_a_marker_does_not_verify_for_other_recipients(void **state)
{
	static const struct { const char *what; const char *rcpts[3]; size_t n; } cases[] = {
		{ "one missing", { "bob@b.test" }, 1 },
		{ "the other missing", { "carol@c.test" }, 1 },
		{ "one more", { "bob@b.test", "carol@c.test", "mallory@evil.test" }, 3 },
		{ "one replaced", { "bob@b.test", "mallory@evil.test" }, 2 },
		{ "a subaddress", { "bob+x@b.test", "carol@c.test" }, 2 },
		{ "one twice", { "bob@b.test", "bob@b.test" }, 2 },
		{ "none", { NULL }, 0 },
	};
	char marker[200];

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (verify(key, marker, NOW, cases[i].rcpts, cases[i].n, body_text, strlen(body_text)))
			fail_msg("case '%s' verifies", cases[i].what);
}

static void
test_recipient_order_and_case_do_not_matter(void **state)
{
	static const char *const made_for[] = { "Bob@B.test", "alice@c.test", "Carol@A.TEST", "dan@d.test" };
	static const char *const orders[][4] = {
		{ "Bob@B.test", "alice@c.test", "Carol@A.TEST", "dan@d.test" },
		{ "dan@d.test", "Carol@A.TEST", "alice@c.test", "Bob@B.test" },
		{ "bob@b.test", "alice@c.test", "carol@a.test", "dan@d.test" },
		{ "ALICE@C.TEST", "BOB@B.TEST", "CAROL@A.TEST", "DAN@D.TEST" },
		{ "carol@a.test", "DAN@d.test", "bob@b.TEST", "Alice@C.Test" },
	};
	char marker[200];

	make_marker(key, NOW, made_for, 4, marker, sizeof(marker));
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
		if (!verify(key, marker, NOW, orders[i], 4, body_text, strlen(body_text)))
			fail_msg("order %zu does not verify", i);
}

static void
test_a_marker_is_bound_to_the_sender_and_the_header_block(void **state)
{
	static const struct { const char *what, *sender, *fields; bool ok; } cases[] = {
		{ "as made", "alice@a.test", marker_fields, true },
		{ "sender in another case", "Alice@A.test", marker_fields, true },
		{ "another hop's Received field", "alice@a.test",
		    "Received: from a by b\r\n\tid 1; now\r\nReceived: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the plan\r\n", true },
		{ "folded otherwise, the milter's leading space", "alice@a.test",
		    "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\nFrom:Alice <alice@a.test>\r\n"
		    "to: bob@b.test, carol@c.test\r\nSubject:  the\r\n plan \r\n", true },
		{ "a marker field among them", "alice@a.test",
		    "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\nX-Cables-Reinjected: v2 x\r\n"
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the plan\r\n", true },
		{ "another sender", "mallory@a.test", marker_fields, false },
		{ "the null sender", "", marker_fields, false },
		{ "another Subject", "alice@a.test",
		    "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the plan!\r\n", false },
		{ "a field added", "alice@a.test",
		    "Received: from x by y; Mon, 1 Dec 2026 10:00:00 +0000\r\nReply-To: mallory@m.test\r\n"
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the plan\r\n", false },
		{ "a field removed", "alice@a.test",
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\n", false },
		{ "fields in another order", "alice@a.test",
		    "To: bob@b.test,\r\n\tcarol@c.test\r\nFrom: Alice <alice@a.test>\r\nSubject: the plan\r\n", false },
		{ "a line break moved into a word", "alice@a.test",
		    "From: Alice <alice@a.test>\r\nTo: bob@b.test,\r\n\tcarol@c.test\r\nSubject: the pl\r\n an\r\n", false },
	};
	char marker[200];

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_sender = cases[i].sender;
		check_fields = cases[i].fields;
		if (verify(key, marker, NOW, bob_carol, 2, body_text, strlen(body_text)) != cases[i].ok)
			fail_msg("%s: should %sverify", cases[i].what, cases[i].ok ? "" : "not ");
	}
	check_sender = "alice@a.test";
	check_fields = marker_fields;
}

static void
test_a_marker_is_valid_for_an_hour_and_not_from_the_future(void **state)
{
	static const struct { long long offset; bool ok; } cases[] = {
		{ 0, true }, { 1, true }, { 3599, true }, { REINJECT_WINDOW, true }, { REINJECT_WINDOW + 1, false },
		{ 86400, false }, { -300, true }, { -301, false }, { -86400, false },
	};
	char marker[200];

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (verify(key, marker, NOW + (time_t)cases[i].offset, bob_carol, 2, body_text, strlen(body_text)) !=
		    cases[i].ok)
			fail_msg("checked %+lld s after it was made: should be %s", cases[i].offset,
			    cases[i].ok ? "valid" : "invalid");
}

static void
test_malformed_markers_do_not_verify(void **state)
{
	char marker[200], nonce[17], mac[65], bad[300];
	long long t;

	make_marker(key, NOW, bob_carol, 2, marker, sizeof(marker));
	assert_int_equal(sscanf(marker, "v2 t=%lld n=%16s h=%64s", &t, nonce, mac), 3);
	{
		char *cases[] = {
			xasprintf("v1 t=%lld n=%s h=%s", t, nonce, mac),	/* the old form, which bound less */
			xasprintf("V2 t=%lld n=%s h=%s", t, nonce, mac),
			xasprintf("t=%lld n=%s h=%s", t, nonce, mac),
			xasprintf("v2 n=%s h=%s", nonce, mac),
			xasprintf("v2 t=%lld h=%s", t, mac),
			xasprintf("v2 t=%lld n=%s", t, nonce),
			xasprintf("v2 t=%lld h=%s n=%s", t, mac, nonce),
			xasprintf("v2 t=%lld n=%s h=%.63s", t, nonce, mac),	/* short MAC */
			xasprintf("v2 t=%lld n=%s h=", t, nonce),
			xasprintf("v2 t=%lld n=%.15s h=%s", t, nonce, mac),	/* short nonce */
			xasprintf("v2 t=%lld n=%sa h=%s", t, nonce, mac),	/* long nonce */
			xasprintf("v2 t=%lld n= h=%s", t, mac),
			/* Another MAC (two digits that differ from the real ones, which may be "00"). */
			xasprintf("v2 t=%lld n=%s h=%.62s%s", t, nonce, mac, strcmp(mac + 62, "00") == 0 ? "11" : "00"),
			xasprintf("v2 t=%lld n=%s h=%s%.62s", t, nonce, strncmp(mac, "00", 2) == 0 ? "11" : "00", mac + 2),
			xasprintf("v2 t=x%lld n=%s h=%s", t, nonce, mac),
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			if (verify(key, cases[i], NOW, bob_carol, 2, body_text, strlen(body_text)))
				fail_msg("'%s' verifies", cases[i]);
			free(cases[i]);
		}
	}
	/* The same MAC with a digit changed at its start, its middle and its end, or in uppercase. */
	for (size_t pos = 0; pos < 64; pos += 21) {
		char *p;

		snprintf(bad, sizeof(bad), "%s", marker);
		p = strstr(bad, " h=") + 3 + (pos == 63 ? 63 : pos);
		*p = *p == '0' ? '1' : '0';
		assert_false(verify(key, bad, NOW, bob_carol, 2, body_text, strlen(body_text)));
	}
	snprintf(bad, sizeof(bad), "%s", marker);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
	assert_false(verify(key, bad, NOW, bob_carol, 2, body_text, strlen(body_text)));
	snprintf(bad, sizeof(bad), "%s", marker);
	for (char *p = strstr(bad, " h=") + 3; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	if (strcmp(bad, marker) != 0)
		assert_false(verify(key, bad, NOW, bob_carol, 2, body_text, strlen(body_text)));
	/* Another time with the same nonce and MAC. */
	snprintf(bad, sizeof(bad), "v2 t=%lld n=%s h=%s", t + 1, nonce, mac);
	assert_false(verify(key, bad, NOW, bob_carol, 2, body_text, strlen(body_text)));
	/* Another nonce with the same time and MAC. */
	nonce[0] = nonce[0] == 'a' ? 'b' : 'a';
	snprintf(bad, sizeof(bad), "v2 t=%lld n=%s h=%s", t, nonce, mac);
	assert_false(verify(key, bad, NOW, bob_carol, 2, body_text, strlen(body_text)));
	{
		const char *const garbage[] = {
			"", " ", "v2", "v2 t=", "garbage", "v2 t=1790000000 n=0123456789abcdef h=",
		};

		for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
			assert_false(verify(key, garbage[i], NOW, bob_carol, 2, body_text, strlen(body_text)));
	}
}

static void
test_two_markers_for_the_same_copy_differ(void **state)
{
	char m1[200], m2[200];

	make_marker(key, NOW, bob_carol, 2, m1, sizeof(m1));
	make_marker(key, NOW, bob_carol, 2, m2, sizeof(m2));
	assert_string_not_equal(m1, m2);
	assert_true(strncmp(m1, m2, strlen("v2 t=1790000000 n=")) == 0);
	assert_true(strncmp(strstr(m1, " n="), strstr(m2, " n="), 19) != 0);	/* a new nonce */
	assert_string_not_equal(strstr(m1, " h="), strstr(m2, " h="));
	assert_true(verify(key, m1, NOW, bob_carol, 2, body_text, strlen(body_text)));
	assert_true(verify(key, m2, NOW, bob_carol, 2, body_text, strlen(body_text)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_full_dialog_sends_the_copy_byte_for_byte),
		cmocka_unit_test(test_original_content_fields_stay_unless_the_copy_brings_its_own),
		cmocka_unit_test(test_an_empty_body_ends_right_after_the_header),
		cmocka_unit_test(test_a_large_body_from_disk_is_stuffed_across_every_buffer),
		cmocka_unit_test(test_parameters_go_only_to_a_server_that_announced_them),
		cmocka_unit_test(test_the_null_sender_and_no_parameters),
		cmocka_unit_test(test_the_queue_id_is_what_the_server_said),
		cmocka_unit_test(test_a_refusal_at_any_step_fails_and_names_the_step),
		cmocka_unit_test(test_a_server_that_closes_the_connection_fails),
		cmocka_unit_test(test_a_server_that_does_not_speak_smtp_fails),
		cmocka_unit_test(test_a_closed_port_fails_at_connect),
		cmocka_unit_test(test_a_server_that_never_answers_times_out),
		cmocka_unit_test(test_a_connection_never_accepted_times_out),
		cmocka_unit_test(test_only_numeric_inet_targets_are_valid),
		cmocka_unit_test(test_an_invalid_target_is_refused_before_connecting),
		cmocka_unit_test(test_a_marker_verifies_for_its_recipients_and_body),
		cmocka_unit_test(test_a_marker_does_not_verify_under_another_key),
		cmocka_unit_test(test_a_marker_does_not_verify_on_other_content),
		cmocka_unit_test(test_a_marker_does_not_verify_for_other_recipients),
		cmocka_unit_test(test_recipient_order_and_case_do_not_matter),
		cmocka_unit_test(test_a_marker_is_bound_to_the_sender_and_the_header_block),
		cmocka_unit_test(test_a_marker_is_valid_for_an_hour_and_not_from_the_future),
		cmocka_unit_test(test_malformed_markers_do_not_verify),
		cmocka_unit_test(test_two_markers_for_the_same_copy_differ),
	};

	/* As libmilter's smfi_main() does: a peer that goes away is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("reinject", tests, group_setup, group_teardown);
}
