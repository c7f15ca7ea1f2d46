/*
 * test_hp - header protection (RFC 9788) plans: outbound (protected copy,
 * HP-Outer, Header Confidentiality Policies, legacy display element) and
 * inbound (which outer fields the protected ones replace, what is never
 * taken from inside, legacy display removal, protected-headers="v1"), with
 * fixtures in tests/unit/fixtures/hp written after RFC 9788's appendix
 * samples and a Thunderbird message, and malformed input.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hp.h"
#include "mime.h"
#include "pad.h"
#include "util.h"

/* A fixture file, LF line ends made CRLF (as on the wire). */
static char *
fixture(const char *name, size_t *len)
{
	const char *top = getenv("top_srcdir");
	char *path = xasprintf("%s/tests/unit/fixtures/hp/%s", top != NULL ? top : ".", name);
	FILE *f = fopen(path, "rb");
	struct buf b;
	int c, prev = 0;

	if (f == NULL)
		fail_msg("cannot open fixture %s", path);
	buf_init(&b);
	while ((c = fgetc(f)) != EOF) {
		if (c == '\n' && prev != '\r')
			buf_append(&b, "\r", 1);
		buf_append(&b, &(char){ (char)c }, 1);
		prev = c;
	}
	fclose(f);
	free(path);
	*len = b.len;
	return b.data;
}

/* Edits as text: "set NAME INDEX VALUE", "del NAME INDEX", "add NAME VALUE", one a line. */
static char *
edits_text(const struct hp_edits *e)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < e->n; i++) {
		const struct hp_edit *d = &e->v[i];

		if (d->op == HP_OP_SET)
			buf_printf(&b, "set %s %u%s\n", d->name, d->index, d->value);
		else if (d->op == HP_OP_DELETE)
			buf_printf(&b, "del %s %u\n", d->name, d->index);
		else
			buf_printf(&b, "add %s%s\n", d->name, d->value);
	}
	if (b.data == NULL)
		buf_appends(&b, "");
	return b.data;
}

/* Apply edits to a header section as an MTA would; the result as "Name:value" CRLF lines. */
static char *
apply_edits(const char *head, size_t len, const struct hp_edits *e)
{
	struct mime_field f;
	size_t off = 0, n = 0;
	char *names[256], *values[256];
	bool gone[256] = { false };
	struct buf out;

	while (mime_field_next(head, len, &off, &f) == 1 && n < 256) {
		names[n] = xstrndup(f.name, f.name_len);
		values[n++] = xstrndup(f.value, f.value_len);
	}
	for (size_t i = 0; i < e->n; i++) {
		const struct hp_edit *d = &e->v[i];
		unsigned int seen = 0;

		if (d->op == HP_OP_ADD) {
			assert_true(n < 256);
			names[n] = xstrdup(d->name);
			values[n++] = xstrdup(d->value);
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			if (gone[j] || !str_ieq(names[j], d->name) || ++seen != d->index)
				continue;
			if (d->op == HP_OP_DELETE) {
				gone[j] = true;
			} else {
				free(values[j]);
				values[j] = xstrdup(d->value);
			}
			break;
		}
		assert_int_equal(seen, d->index);
	}
	buf_init(&out);
	for (size_t j = 0; j < n; j++) {
		if (!gone[j])
			buf_printf(&out, "%s:%s\r\n", names[j], values[j]);
		free(names[j]);
		free(values[j]);
	}
	if (out.data == NULL)
		buf_appends(&out, "");
	return out.data;
}

#define ORIGINAL \
	"Received: from [192.0.2.9] by mail.a.test (Postfix) with ESMTPSA id 1A2B\r\n" \
	"\tfor <bob@b.test>; Tue, 03 Mar 2026 10:00:00 +0100\r\n" \
	"Return-Path: <alice@a.test>\r\n" \
	"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s1; b=AAAA\r\n" \
	"From: Alice Liddell <alice@a.test>\r\n" \
	"To: Bob <bob@b.test>, \"Carol C.\" <carol@c.test>\r\n" \
	"Cc: dan@d.test\r\n" \
	"Subject: Tea at four,\r\n" \
	" not five\r\n" \
	"Date: Tue, 03 Mar 2026 10:00:00 +0100\r\n" \
	"Message-ID: <m1@a.test>\r\n" \
	"Keywords: tea\r\n" \
	"X-Mailer: test\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: text/plain; charset=us-ascii\r\n"

static void
test_protect_baseline_hides_subject_and_keeps_what_mtas_need(void **state)
{
	struct hp_protect p;
	struct cables_err err;
	char *edits;

	assert_int_equal(hp_protect(ORIGINAL, strlen(ORIGINAL), HP_POLICY_BASELINE, &p, &err), CABLES_OK);
	/* Every user field inside, in order, folds kept; no trace, transport or content field. */
	assert_string_equal(p.inner.data,
	    "From: Alice Liddell <alice@a.test>\r\n"
	    "To: Bob <bob@b.test>, \"Carol C.\" <carol@c.test>\r\n"
	    "Cc: dan@d.test\r\n"
	    "Subject: Tea at four,\r\n not five\r\n"
	    "Date: Tue, 03 Mar 2026 10:00:00 +0100\r\n"
	    "Message-ID: <m1@a.test>\r\n"
	    "Keywords: tea\r\n"
	    "X-Mailer: test\r\n"
	    "HP-Outer: From: Alice Liddell <alice@a.test>\r\n"
	    "HP-Outer: To: Bob <bob@b.test>, \"Carol C.\" <carol@c.test>\r\n"
	    "HP-Outer: Cc: dan@d.test\r\n"
	    "HP-Outer: Subject: [...]\r\n"
	    "HP-Outer: Date: Tue, 03 Mar 2026 10:00:00 +0100\r\n"
	    "HP-Outer: Message-ID: <m1@a.test>\r\n"
	    "HP-Outer: X-Mailer: test\r\n");
	edits = edits_text(&p.outer);
	assert_string_equal(edits, "set Subject 1 [...]\ndel Keywords 1\n");
	free(edits);
	assert_int_equal(p.hidden, 1);
	assert_string_equal(p.legacy.data, "Subject: Tea at four, not five\r\n");
	hp_protect_release(&p);
	(void)state;
}

static void
test_protect_none_hides_nothing_but_protects_everything(void **state)
{
	struct hp_protect p;

	assert_int_equal(hp_protect(ORIGINAL, strlen(ORIGINAL), HP_POLICY_NONE, &p, NULL), CABLES_OK);
	assert_int_equal(p.outer.n, 0);
	assert_int_equal(p.hidden, 0);
	assert_int_equal(p.legacy.len, 0);
	assert_non_null(strstr(p.inner.data, "Subject: Tea at four,\r\n not five\r\n"));
	assert_non_null(strstr(p.inner.data, "HP-Outer: Subject: Tea at four,\r\n not five\r\n"));
	assert_non_null(strstr(p.inner.data, "HP-Outer: Keywords: tea\r\n"));
	hp_protect_release(&p);
	(void)state;
}

static void
test_protect_shy_drops_display_names_and_time_zone(void **state)
{
	struct hp_protect p;
	char *edits;

	assert_int_equal(hp_protect(ORIGINAL, strlen(ORIGINAL), HP_POLICY_SHY, &p, NULL), CABLES_OK);
	edits = edits_text(&p.outer);
	assert_string_equal(edits,
	    "set From 1 alice@a.test\n"
	    "set To 1 bob@b.test, carol@c.test\n"
	    "set Subject 1 [...]\n"
	    "set Date 1 Tue, 03 Mar 2026 09:00:00 +0000\n"
	    "del Keywords 1\n");
	free(edits);
	/* Cc had no display name: unchanged, not hidden. */
	assert_int_equal(p.hidden, 4);
	assert_string_equal(p.legacy.data,
	    "Subject: Tea at four, not five\r\n"
	    "From: Alice Liddell <alice@a.test>\r\n"
	    "To: Bob <bob@b.test>, \"Carol C.\" <carol@c.test>\r\n"
	    "Date: Tue, 03 Mar 2026 10:00:00 +0100\r\n");
	assert_non_null(strstr(p.inner.data, "HP-Outer: From: alice@a.test\r\n"));
	hp_protect_release(&p);
	(void)state;
}

/*
 * hcp_shy field by field: the value the world sees (NULL: the field stays
 * as it is, and is not hidden).  Only names go: a display name, a group
 * name or a comment; the addr-spec stays as written (quoted local parts
 * too), and a value that names no one is not rewritten for its form alone.
 * Date is the same instant in UTC; one that cannot be read stays.
 */
static void
test_protect_shy_field_by_field(void **state)
{
	static const struct {
		const char *field, *outer;
	} cases[] = {
		{ "From: Alice Liddell <alice@a.test>", " alice@a.test" },
		{ "From: <alice@a.test>", NULL },
		{ "From: alice@a.test", NULL },
		{ "From: alice@a.test (Alice Liddell)", " alice@a.test" },
		{ "From: =?utf-8?q?J=C3=B6rg?= <joerg@a.test>", " joerg@a.test" },
		{ "To: \"John\" <\"john doe\"@b.test>", " \"john doe\"@b.test" },
		{ "To: \"john doe\"@b.test", NULL },
		{ "To: Friends: Alice <a@b.test>, c@b.test;", " a@b.test, c@b.test" },
		{ "To: undisclosed-recipients:;", NULL },
		{ "To: <@relay.test:bob@b.test>", " bob@b.test" },
		{ "To: Secret Project:;", " undisclosed-recipients:;" },
		/* A name written as a comment is a name: GMime drops the comment, the raw text still has it. */
		{ "From: alice(Alice Liddell)@a.test", " alice@a.test" },
		{ "From: <alice@a.test> (Alice Liddell)", " alice@a.test" },
		{ "From: (Alice Liddell) alice@a.test", " alice@a.test" },
		{ "To: alice@a.test, (Bob Secret) bob@b.test", " alice@a.test, bob@b.test" },
		{ "Cc: <alice@a.test>, <bob@b.test> (Bob the CFO)", " alice@a.test, bob@b.test" },
		{ "Cc: <alice@a.test>,<bob@b.test>", NULL },
		{ "Cc: Bob <bob@b.test>, carol@c.test", " bob@b.test, carol@c.test" },
		{ "Cc: not an address", " undisclosed-recipients:;" },	/* no address, but maybe a name: hidden */
		{ "Reply-To: Alice <alice@a.test>", NULL },
		{ "Sender: Alice <alice@a.test>", NULL },
		{ "Date: Tue, 3 Mar 2026 23:30 -0500", " Wed, 04 Mar 2026 04:30:00 +0000" },
		{ "Date: Tue, 03 Mar 2026 10:00:00 EST", " Tue, 03 Mar 2026 15:00:00 +0000" },
		{ "Date: Tue, 03 Mar 2026 10:00:00 +0000", NULL },
		{ "Date: yesterday", NULL },
		{ "Message-ID: <m1@a.test>", NULL },
		{ "In-Reply-To: <m0@b.test>", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hp_protect p;
		char *head = xasprintf("%s\r\n", cases[i].field);

		assert_int_equal(hp_protect(head, strlen(head), HP_POLICY_SHY, &p, NULL), CABLES_OK);
		if (cases[i].outer == NULL) {
			if (p.outer.n != 0)
				fail_msg("%s: rewritten as '%s'", cases[i].field, p.outer.v[0].value);
			assert_int_equal(p.hidden, 0);
		} else {
			if (p.outer.n != 1)
				fail_msg("%s: %zu edits", cases[i].field, p.outer.n);
			assert_int_equal(p.outer.v[0].op, HP_OP_SET);
			assert_string_equal(p.outer.v[0].value, cases[i].outer);
			assert_int_equal(p.hidden, 1);
		}
		hp_protect_release(&p);
		free(head);
	}
	(void)state;
}

static void
test_protect_duplicated_fields_are_each_protected_and_hidden(void **state)
{
	static const char head[] = "Subject: one\r\nSubject: two\r\nKeywords: a\r\nKeywords: b\r\nTo: x@b.test\r\n";
	struct hp_protect p;
	char *edits;

	assert_int_equal(hp_protect(head, strlen(head), HP_POLICY_BASELINE, &p, NULL), CABLES_OK);
	edits = edits_text(&p.outer);
	/* Deletions come last, the higher index first, so the lower one stays valid. */
	assert_string_equal(edits, "set Subject 1 [...]\nset Subject 2 [...]\ndel Keywords 2\ndel Keywords 1\n");
	free(edits);
	assert_string_equal(p.legacy.data, "Subject: one\r\nSubject: two\r\n");
	hp_protect_release(&p);
	(void)state;
}

static void
test_protect_lf_input_and_missing_fields(void **state)
{
	static const char head[] = "From: a@a.test\nSubject: folded\n\tline\n";
	struct hp_protect p;

	/* No To, Cc, Date or Message-ID: nothing is invented, nothing fails. */
	assert_int_equal(hp_protect(head, strlen(head), HP_POLICY_BASELINE, &p, NULL), CABLES_OK);
	assert_string_equal(p.inner.data,
	    "From: a@a.test\r\nSubject: folded\r\n\tline\r\n"
	    "HP-Outer: From: a@a.test\r\nHP-Outer: Subject: [...]\r\n");
	hp_protect_release(&p);
	assert_int_equal(hp_protect("", 0, HP_POLICY_BASELINE, &p, NULL), CABLES_OK);
	assert_int_equal(p.inner.len, 0);
	assert_int_equal(p.outer.n, 0);
	hp_protect_release(&p);
	(void)state;
}

/* Header injection and other dangerous values: refused, the field named. */
static void
test_protect_refuses_injection(void **state)
{
	static const struct {
		const char *head;
		size_t len;
		const char *msg;
	} cases[] = {
		{ "Subject: a\rBcc: evil@x.test\r\n", 0, "header field 'Subject' has a bare CR" },
		{ "Subject: a\r\n \r\nBcc: evil@x.test\r\n", 0, "header field 'Subject' has a continuation line of blanks only" },
		{ "Subject: a\r\n\t\t\r\n\r\nbody", 0, "header field 'Subject' has a continuation line of blanks only" },
		{ "To: a@b.test\x0b\r\n", 0, "header field 'To' has control character 0x0b" },
		{ "Subject: a\0b\r\n", 14, "header field 'Subject' has control character 0x00" },
		{ "Subject: a\x7f\r\n", 0, "header field 'Subject' has control character 0x7f" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hp_protect p;
		struct cables_err err;
		size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].head);

		assert_int_equal(hp_protect(cases[i].head, len, HP_POLICY_BASELINE, &p, &err), CABLES_ERR_SYNTAX);
		assert_string_equal(err.msg, cases[i].msg);
		hp_protect_release(&p);
	}
	(void)state;
}

static void
test_huge_headers_are_refused(void **state)
{
	struct buf b;
	struct hp_protect p;
	struct hp_restore r;
	struct cables_err err;

	/* One field longer than HP_HEAD_MAX. */
	buf_init(&b);
	buf_appends(&b, "Subject: ");
	while (b.len <= HP_HEAD_MAX)
		buf_appends(&b, "x\r\n y");
	buf_appends(&b, "\r\n\r\n");
	assert_int_equal(hp_protect(b.data, b.len, HP_POLICY_BASELINE, &p, &err), CABLES_ERR_TOOBIG);
	assert_non_null(strstr(err.msg, "exceeds"));
	hp_protect_release(&p);
	assert_int_equal(hp_restore(b.data, b.len, "", 0, HP_IN_ENCRYPTION, &r, &err), CABLES_ERR_TOOBIG);
	hp_restore_release(&r);
	/* Too many small fields. */
	buf_reset(&b);
	for (int i = 0; i <= HP_FIELDS_MAX; i++)
		buf_printf(&b, "X-F%d: v\r\n", i);
	assert_int_equal(hp_protect(b.data, b.len, HP_POLICY_BASELINE, &p, &err), CABLES_ERR_TOOBIG);
	assert_string_equal(err.msg, "header section has more than 1000 fields");
	hp_protect_release(&p);
	buf_release(&b);
	(void)state;
}

static void
test_content_type_marking(void **state)
{
	struct cables_err err;
	char *v;

	v = hp_content_type(" text/plain; charset=us-ascii", false, &err);
	assert_string_equal(v, " text/plain; charset=us-ascii; hp=\"cipher\"");
	free(v);
	v = hp_content_type(" text/html", true, &err);
	assert_string_equal(v, " text/html; hp-legacy-display=\"1\"; hp=\"cipher\"");
	free(v);
	v = hp_content_type(NULL, false, &err);
	assert_string_equal(v, " text/plain; hp=\"cipher\"");
	free(v);
	assert_null(hp_content_type(" text/plain; hp=clear", false, &err));
	assert_non_null(strstr(err.msg, "already claims header protection"));
	assert_null(hp_content_type(" multipart/mixed; boundary=b; protected-headers=\"v1\"", false, &err));
	(void)state;
}

static void
test_legacy_kind(void **state)
{
	static const struct {
		const char *ct, *cte, *disp;
		enum hp_legacy want;
	} cases[] = {
		{ NULL, NULL, NULL, HP_LEGACY_TEXT },
		{ " text/plain; charset=utf-8", " 8bit", NULL, HP_LEGACY_TEXT },
		{ " text/plain; charset=US-ASCII; format=flowed", " 7bit", " inline", HP_LEGACY_TEXT },
		{ " text/html; charset=utf-8", NULL, NULL, HP_LEGACY_HTML },
		{ " text/plain; charset=utf-8", " quoted-printable", NULL, HP_LEGACY_NONE },
		{ " text/plain", " base64", NULL, HP_LEGACY_NONE },
		{ " text/plain; charset=iso-8859-1", NULL, NULL, HP_LEGACY_NONE },
		{ " text/plain", NULL, " attachment; filename=a.txt", HP_LEGACY_NONE },
		{ " multipart/alternative; boundary=x", NULL, NULL, HP_LEGACY_NONE },
		{ " application/pdf", NULL, NULL, HP_LEGACY_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(hp_legacy_kind(cases[i].ct, cases[i].cte, cases[i].disp), cases[i].want);
	(void)state;
}

static void
test_legacy_element_text_and_html(void **state)
{
	struct buf fields, out;

	buf_init(&fields);
	buf_init(&out);
	buf_appends(&fields, "Subject: Fish & <chips>\r\nTo: =?utf-8?q?J=C3=BCrgen?= <j@b.test>\r\n");
	hp_legacy_element(HP_LEGACY_TEXT, &fields, " text/plain; charset=utf-8", " 8bit", &out);
	assert_string_equal(out.data, "Subject: Fish & <chips>\r\nTo: J\xc3\xbcrgen <j@b.test>\r\n\r\n");
	buf_reset(&out);
	/* 7bit: the encoded word stays as it is. */
	hp_legacy_element(HP_LEGACY_TEXT, &fields, " text/plain", NULL, &out);
	assert_non_null(strstr(out.data, "To: =?utf-8?q?J=C3=BCrgen?= <j@b.test>\r\n"));
	buf_reset(&out);
	hp_legacy_element(HP_LEGACY_HTML, &fields, " text/html", NULL, &out);
	assert_string_equal(out.data, "<div class=\"header-protection-legacy-display\"><pre>\r\n"
	    "Subject: Fish &amp; &lt;chips&gt;\r\nTo: =?utf-8?q?J=C3=BCrgen?= &lt;j@b.test&gt;\r\n</pre></div>\r\n");
	buf_reset(&out);
	hp_legacy_element(HP_LEGACY_NONE, &fields, NULL, NULL, &out);
	assert_int_equal(out.len, 0);
	buf_release(&fields);
	buf_release(&out);
	(void)state;
}

static void
test_legacy_html_offset(void **state)
{
	static const char a[] = "<html><head></head><BODY class=\"x\">hi</body></html>";

	assert_int_equal(hp_legacy_html_offset(a, strlen(a)), strlen("<html><head></head><BODY class=\"x\">"));
	assert_int_equal(hp_legacy_html_offset("<p>no body</p>", 14), 0);
	assert_int_equal(hp_legacy_html_offset("<bodyguard>x", 12), 0);
	assert_int_equal(hp_legacy_html_offset("<body", 5), 0);
	(void)state;
}

/* ---- inbound ---- */

struct case_files {
	char *outer, *payload;
	size_t outer_len, payload_len;
};

static void
load(const char *name, struct case_files *c)
{
	char *o = xasprintf("%s.outer", name), *p = xasprintf("%s.payload", name);

	c->outer = fixture(o, &c->outer_len);
	c->payload = fixture(p, &c->payload_len);
	free(o);
	free(p);
}

static void
unload(struct case_files *c)
{
	free(c->outer);
	free(c->payload);
}

static void
test_restore_rfc9788_baseline(void **state)
{
	struct case_files c;
	struct hp_restore r;
	struct cables_err err;
	char *edits, *after;

	load("baseline", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, &err),
	    CABLES_OK);
	assert_int_equal(r.scheme, HP_SCHEME_RFC9788);
	assert_true(r.cipher);
	assert_int_equal(r.legacy, HP_LEGACY_NONE);
	assert_int_equal(r.refused, 0);
	assert_string_equal(r.content.data, "Content-Type: text/plain; charset=\"us-ascii\"\r\n");
	assert_memory_equal(c.payload + r.body_off, "Bob, the pear", 13);
	edits = edits_text(&r.outer);
	assert_string_equal(edits,
	    "set Date 1 Tue, 03 Mar 2026 10:12:40 +0100\n"
	    "set From 1 Alice Example <alice@sender.example>\n"
	    "set To 1 Bob Example <bob@receiver.example>\n"
	    "set Subject 1 The orchard plan for spring\n"
	    "set Message-ID 1 <hp-baseline-7f3a@sender.example>\n");
	free(edits);
	/* Trace and our Authentication-Results stay as they are. */
	after = apply_edits(c.outer, c.outer_len, &r.outer);
	assert_non_null(strstr(after, "Subject: The orchard plan for spring\r\n"));
	assert_non_null(strstr(after, "Authentication-Results: mx.receiver.example; dkim=pass"));
	assert_non_null(strstr(after, "Received: from mx.sender.example"));
	free(after);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_restore_legacy_text_is_cut(void **state)
{
	struct case_files c;
	struct hp_restore r;
	size_t cut;
	const char *body;

	load("legacy-text", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.legacy, HP_LEGACY_TEXT);
	/* Both parameters go, the line break between them with the second. */
	assert_string_equal(r.content.data, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n");
	body = c.payload + r.body_off;
	cut = hp_legacy_strip_text(body, c.payload_len - r.body_off);
	assert_int_equal(cut, strlen("Subject: Choir practice moves to Thursday\r\n\r\n"));
	assert_string_equal(body + cut, "We start at seven in the small hall; bring the new scores.\r\n");
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_restore_legacy_html_is_cut(void **state)
{
	struct case_files c;
	struct hp_restore r;
	size_t from, to;
	const char *body;
	struct buf shown;

	load("legacy-html", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.legacy, HP_LEGACY_HTML);
	body = c.payload + r.body_off;
	assert_true(hp_legacy_strip_html(body, c.payload_len - r.body_off, &from, &to));
	buf_init(&shown);
	buf_append(&shown, body, from);
	buf_append(&shown, body + to, c.payload_len - r.body_off - to);
	assert_string_equal(shown.data, "<html><head><title></title></head><body>"
	    "<p>We start at <b>seven</b> in the small hall.</p>\r\n</body></html>\r\n");
	buf_release(&shown);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_restore_outer_only_addressing_is_dropped(void **state)
{
	struct case_files c;
	struct hp_restore r;
	struct hp_cut cuts[HP_CUTS_MAX];
	char *edits, *after;

	load("alternative", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	/* A multipart may hold elements in its parts; this one holds none. */
	assert_int_equal(r.legacy, HP_LEGACY_NESTED);
	assert_int_equal(hp_legacy_cuts(c.payload, c.payload_len, &r, cuts, HP_CUTS_MAX), 0);
	edits = edits_text(&r.outer);
	/* One protected Cc against two outside: the added one goes; so does a Reply-To only outside. */
	assert_non_null(strstr(edits, "set Cc 1 Erin <erin@third.example>\ndel Cc 2\n"));
	assert_non_null(strstr(edits, "del Reply-To 1\n"));
	free(edits);
	after = apply_edits(c.outer, c.outer_len, &r.outer);
	assert_null(strstr(after, "mallory"));
	assert_non_null(strstr(after, "Subject: Seeds ordered\r\n"));
	assert_non_null(strstr(after, "Received: by mx.receiver.example"));
	free(after);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_restore_thunderbird_v1_with_display_part(void **state)
{
	struct case_files c;
	struct hp_restore r;
	struct mime_type t;
	size_t from, to, blen;
	const char *body;
	char *edits, *rest;
	static const char second_part[] = "--------------mix1TB\r\nContent-Type: text/plain; charset=UTF-8; format=flowed";

	load("thunderbird-v1", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.scheme, HP_SCHEME_V1);
	assert_true(r.cipher);
	assert_int_equal(r.legacy, HP_LEGACY_V1_PART);
	assert_string_equal(r.content.data,
	    "Content-Type: multipart/mixed; boundary=\"------------mix1TB\"\r\nMIME-Version: 1.0\r\n");
	edits = edits_text(&r.outer);
	assert_non_null(strstr(edits, "set Subject 1 Minutes of the allotment meeting\n"));
	assert_null(strstr(edits, "del "));
	free(edits);
	mime_type_parse(" multipart/mixed; boundary=\"------------mix1TB\"", &t);
	body = c.payload + r.body_off;
	blen = c.payload_len - r.body_off;
	assert_true(hp_legacy_strip_v1(body, blen, t.boundary, &from, &to));
	rest = xstrndup(body + to, blen - to);
	assert_true(strncmp(rest, second_part, strlen(second_part)) == 0);
	assert_memory_equal(body, "--------------mix1TB\r\n", 22);
	assert_int_equal(from, 0);
	free(rest);
	mime_type_release(&t);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_v1_display_part_must_look_like_one(void **state)
{
	static const char real[] = "--b\r\nContent-Type: text/plain; protected-headers=\"v1\"\r\n\r\n"
	    "Hello, this is the letter itself.\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n";
	static const char plain[] = "--b\r\nContent-Type: text/plain\r\n\r\nSubject: x\r\n--b\r\n";
	static const char enigmail[] = "preamble\r\n--b\r\nContent-Type: text/rfc822-headers; protected-headers=\"v1\"\r\n"
	    "Content-Disposition: inline\r\n\r\nSubject: x\r\nTo: y@b.test\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nz\r\n--b--\r\n";
	static const char open[] = "--b\r\nContent-Type: text/plain; protected-headers=\"v1\"\r\n\r\nSubject: x\r\n";
	size_t from, to;

	assert_false(hp_legacy_strip_v1(real, strlen(real), "b", &from, &to));
	assert_false(hp_legacy_strip_v1(plain, strlen(plain), "b", &from, &to));
	assert_false(hp_legacy_strip_v1(open, strlen(open), "b", &from, &to));
	assert_true(hp_legacy_strip_v1(enigmail, strlen(enigmail), "b", &from, &to));
	assert_int_equal(from, strlen("preamble\r\n"));
	assert_string_equal(enigmail + to, "--b\r\nContent-Type: text/plain\r\n\r\nz\r\n--b--\r\n");
	(void)state;
}

static void
test_restore_never_takes_transport_fields_from_inside(void **state)
{
	static const char payload[] =
	    "Received: from evil by mx.b.test\r\n"
	    "Return-Path: <evil@x.test>\r\n"
	    "DKIM-Signature: v=1; d=b.test; b=forged\r\n"
	    "Authentication-Results: mx.b.test; smime=pass\r\n"
	    "X-Cables: decrypted\r\n"
	    "Resent-To: evil@x.test\r\n"
	    "Bcc: evil@x.test\r\n"
	    "Subject: real\r\n"
	    "Content-Type: text/plain; hp=\"cipher\"\r\n\r\nbody\r\n";
	static const char outer[] = "Received: from a by mx.b.test\r\nSubject: [...]\r\n";
	struct hp_restore r;
	char *edits;

	assert_int_equal(hp_restore(payload, strlen(payload), outer, strlen(outer), HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.refused, 7);
	edits = edits_text(&r.outer);
	assert_string_equal(edits, "set Subject 1 real\n");
	free(edits);
	hp_restore_release(&r);
	(void)state;
}

static void
test_restore_duplicates(void **state)
{
	static const char payload[] = "To: a@b.test\r\nTo: c@b.test\r\nCc: d@b.test\r\n"
	    "Content-Type: text/plain; hp=\"cipher\"\r\n\r\n";
	static const char outer[] = "To: a@b.test\r\nCc: x@b.test\r\nCc: y@b.test\r\nCc: z@b.test\r\n";
	struct hp_restore r;
	char *edits, *after;

	assert_int_equal(hp_restore(payload, strlen(payload), outer, strlen(outer), HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	edits = edits_text(&r.outer);
	assert_string_equal(edits, "set To 1 a@b.test\nadd To c@b.test\nset Cc 1 d@b.test\ndel Cc 3\ndel Cc 2\n");
	free(edits);
	after = apply_edits(outer, strlen(outer), &r.outer);
	assert_string_equal(after, "To: a@b.test\r\nCc: d@b.test\r\nTo: c@b.test\r\n");
	free(after);
	hp_restore_release(&r);
	(void)state;
}

static void
test_restore_v1_keeps_outer_only_fields(void **state)
{
	static const char payload[] = "Subject: real\r\nContent-Type: text/plain; protected-headers=v1\r\n\r\nx";
	static const char outer[] = "Subject: ...\r\nCc: someone@b.test\r\n";
	struct hp_restore r;
	char *edits;

	assert_int_equal(hp_restore(payload, strlen(payload), outer, strlen(outer), HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.scheme, HP_SCHEME_V1);
	assert_int_equal(r.legacy, HP_LEGACY_NONE);	/* not a multipart/mixed */
	edits = edits_text(&r.outer);
	assert_string_equal(edits, "set Subject 1 real\n");
	free(edits);
	assert_string_equal(r.content.data, "Content-Type: text/plain\r\n");
	hp_restore_release(&r);
	(void)state;
}

static void
test_restore_without_protection_changes_nothing(void **state)
{
	static const char payload[] = "Content-Type: text/plain; charset=utf-8\r\nSubject: inner\r\n\r\nbody";
	struct hp_restore r;

	assert_int_equal(hp_restore(payload, strlen(payload), "Subject: outer\r\n", 16, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.scheme, HP_SCHEME_NONE);
	assert_int_equal(r.outer.n, 0);
	assert_string_equal(r.content.data, "Content-Type: text/plain; charset=utf-8\r\n");
	assert_int_equal(r.body_off, strlen(payload) - 4);
	hp_restore_release(&r);
	(void)state;
}

static void
test_restore_signed_payload_keeps_its_bytes(void **state)
{
	struct case_files c;
	struct hp_restore r;
	char *edits;

	load("legacy-text", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION | HP_SIGNED, &r,
	    NULL), CABLES_OK);
	assert_int_equal(r.legacy, HP_LEGACY_NONE);
	assert_non_null(strstr(r.content.data, "hp-legacy-display=\"1\";\r\n hp=\"cipher\""));
	edits = edits_text(&r.outer);
	assert_non_null(strstr(edits, "set Subject 1 Choir practice"));
	free(edits);
	hp_restore_release(&r);
	/* Outside encryption, hp="cipher" promises nothing: no display is cut. */
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, 0, &r, NULL), CABLES_OK);
	assert_false(r.cipher);
	assert_int_equal(r.legacy, HP_LEGACY_NONE);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_restore_refuses_malformed_payloads(void **state)
{
	static const struct {
		const char *payload;
		cables_status st;
		const char *msg;
	} cases[] = {
		{ "Subject: a\rTo: evil@x.test\r\nContent-Type: text/plain; hp=cipher\r\n\r\n", CABLES_ERR_SYNTAX,
		  "header field 'Subject' has a bare CR" },
		{ "Subject: a\r\n \r\nContent-Type: text/plain; hp=cipher\r\n\r\n", CABLES_ERR_SYNTAX,
		  "header field 'Subject' has a continuation line of blanks only" },
		{ "Subject: a\r\nnot a field\r\n\r\n", CABLES_ERR_SYNTAX,
		  "the payload's header section ends at a line that is not a field (offset 12)" },
		{ "Subject: a\r\nContent-Type: text/plain; hp=cipher\r\n", CABLES_ERR_TOOBIG,
		  "the payload's header section does not end within 49 bytes" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hp_restore r;
		struct cables_err err;

		assert_int_equal(hp_restore(cases[i].payload, strlen(cases[i].payload), "", 0, HP_IN_ENCRYPTION, &r,
		    &err), cases[i].st);
		assert_string_equal(err.msg, cases[i].msg);
		assert_int_equal(r.outer.n, 0);
		hp_restore_release(&r);
	}
	(void)state;
}

static void
test_legacy_text_strip_needs_field_lines(void **state)
{
	assert_int_equal(hp_legacy_strip_text("Subject: x\n\nbody", 16), 12);
	assert_int_equal(hp_legacy_strip_text("Dear Bob,\r\n\r\nbody", 17), 0);
	assert_int_equal(hp_legacy_strip_text("Subject: x\r\nno blank line", 25), 0);
	assert_int_equal(hp_legacy_strip_text("\r\nbody", 6), 0);
	(void)state;
}

static void
test_legacy_html_strip_needs_the_div(void **state)
{
	static const char nested[] = "<div class=\"header-protection-legacy-display\"><div>x</div></div>";
	static const char unclosed[] = "<div class=\"header-protection-legacy-display\"><pre>x";
	static const char text[] = "<p>header-protection-legacy-display</p>";
	size_t from, to;

	assert_false(hp_legacy_strip_html(nested, strlen(nested), &from, &to));
	assert_false(hp_legacy_strip_html(unclosed, strlen(unclosed), &from, &to));
	assert_false(hp_legacy_strip_html(text, strlen(text), &from, &to));
	(void)state;
}

/* What the reader gets: the payload's body without the cut ranges. */
static char *
cut_body(const char *payload, size_t len, const struct hp_restore *r)
{
	struct hp_cut cuts[HP_CUTS_MAX];
	size_t n = hp_legacy_cuts(payload, len, r, cuts, HP_CUTS_MAX), at = r->body_off;
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		assert_true(cuts[i].from >= at && cuts[i].to > cuts[i].from && cuts[i].to <= len);
		buf_append(&b, payload + at, cuts[i].from - at);
		at = cuts[i].to;
	}
	buf_append(&b, payload + at, len - at);
	return b.data;
}

static void
test_legacy_cuts_in_main_body_parts_only(void **state)
{
	struct case_files c;
	struct hp_restore r;
	char *body;

	load("nested-legacy", &c);
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	assert_int_equal(r.legacy, HP_LEGACY_NESTED);
	body = cut_body(c.payload, c.payload_len, &r);
	assert_string_equal(body,
	    "--mix-o\r\n"
	    "Content-Type: multipart/alternative; boundary=\"alt-i\"\r\n\r\n"
	    "--alt-i\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "The gutter on the north side is full of leaves again.\r\n"
	    "--alt-i\r\n"
	    "Content-Type: text/html; charset=us-ascii\r\n\r\n"
	    "<html><body><p>The gutter on the north side is full of leaves again.</p>\r\n</body></html>\r\n"
	    "--alt-i--\r\n\r\n"
	    "--mix-o\r\n"
	    "Content-Type: text/plain; charset=us-ascii; hp-legacy-display=\"1\"\r\n"
	    "Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
	    "Subject: this attachment is not a main body part\r\n\r\nand is never cut.\r\n"
	    "--mix-o--\r\n");
	free(body);
	hp_restore_release(&r);
	/* Signed, or outside encryption: nothing is cut. */
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION | HP_SIGNED, &r,
	    NULL), CABLES_OK);
	body = cut_body(c.payload, c.payload_len, &r);
	assert_string_equal(body, c.payload + r.body_off);
	free(body);
	hp_restore_release(&r);
	/* Only the first bytes at hand: a part that does not end in them is left alone. */
	assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r, NULL),
	    CABLES_OK);
	body = cut_body(c.payload, (size_t)(strstr(c.payload, "</pre></div>") - c.payload), &r);
	assert_null(strstr(body, "Subject: Bring the ladder\r\n\r\nThe gutter"));
	assert_non_null(strstr(body, "header-protection-legacy-display"));
	free(body);
	hp_restore_release(&r);
	unload(&c);
	(void)state;
}

static void
test_legacy_cuts_single_and_v1(void **state)
{
	static const char *const names[] = { "legacy-text", "legacy-html", "thunderbird-v1" };
	static const char *const gone[] = { "Subject: Choir", "header-protection-legacy-display",
	    "protected-headers=\"v1\"\r\nContent-Disposition" };

	for (size_t i = 0; i < 3; i++) {
		struct case_files c;
		struct hp_restore r;
		char *body;

		load(names[i], &c);
		assert_int_equal(hp_restore(c.payload, c.payload_len, c.outer, c.outer_len, HP_IN_ENCRYPTION, &r,
		    NULL), CABLES_OK);
		assert_non_null(strstr(c.payload + r.body_off, gone[i]));
		body = cut_body(c.payload, c.payload_len, &r);
		assert_null(strstr(body, gone[i]));
		assert_true(strlen(body) < c.payload_len - r.body_off);
		free(body);
		hp_restore_release(&r);
		unload(&c);
	}
	(void)state;
}

/*
 * The whole way: a message protected as Cables sends it (content head
 * marked, legacy display elements put in with hp_legacy_inserts), restored
 * as Cables receives it, gives the original outer fields, content head and
 * body byte for byte.  want: how many insertions; seen: what the payload
 * must hold with them (or NULL).
 */
static void
round_trip(const char *content_type, const char *body, size_t want, const char *seen)
{
	struct hp_protect p;
	struct hp_restore r;
	struct hp_insert ins[HP_INSERTS_MAX];
	bool top;
	char *ct, *outer_after, *restored, *shown;
	struct buf msg, payload, content;
	size_t n, at = 0;

	buf_init(&msg);
	buf_printf(&msg, "Received: by mx\r\nFrom: A <a@a.test>\r\nTo: b@b.test\r\nSubject: Plans\r\n"
	    "Date: Tue, 03 Mar 2026 10:00:00 +0100\r\nMessage-ID: <x@a.test>\r\nContent-Type:%s\r\n", content_type);
	assert_int_equal(hp_protect(msg.data, msg.len, HP_POLICY_BASELINE, &p, NULL), CABLES_OK);
	n = hp_legacy_inserts(body, strlen(body), content_type, NULL, NULL, &p.legacy, &top, ins, HP_INSERTS_MAX);
	if (n != want)
		fail_msg("%s: %zu insertions, want %zu", content_type, n, want);
	ct = hp_content_type(content_type, top, NULL);
	buf_init(&payload);
	buf_append(&payload, p.inner.data, p.inner.len);
	buf_printf(&payload, "Content-Type:%s\r\n\r\n", ct);
	for (size_t i = 0; i < n; i++) {
		assert_true(ins[i].at >= at && ins[i].at <= strlen(body));
		buf_append(&payload, body + at, ins[i].at - at);
		buf_append(&payload, ins[i].text.data, ins[i].text.len);
		at = ins[i].at;
	}
	buf_appends(&payload, body + at);
	hp_inserts_release(ins, n);
	if (n > 0)
		assert_non_null(strstr(payload.data, "Subject: Plans\r\n"));
	if (seen != NULL && strstr(payload.data, seen) == NULL)
		fail_msg("the payload has no '%s':\n%s", seen, payload.data);
	outer_after = apply_edits(msg.data, msg.len, &p.outer);
	assert_non_null(strstr(outer_after, "Subject: [...]\r\n"));

	assert_int_equal(hp_restore(payload.data, payload.len, outer_after, strlen(outer_after), HP_IN_ENCRYPTION,
	    &r, NULL), CABLES_OK);
	restored = apply_edits(outer_after, strlen(outer_after), &r.outer);
	assert_string_equal(restored, msg.data);
	buf_init(&content);
	buf_printf(&content, "Content-Type:%s\r\n", content_type);
	assert_string_equal(r.content.data, content.data);
	shown = cut_body(payload.data, payload.len, &r);
	assert_string_equal(shown, body);
	free(shown);
	buf_release(&content);
	free(restored);
	free(outer_after);
	free(ct);
	buf_release(&payload);
	buf_release(&msg);
	hp_restore_release(&r);
	hp_protect_release(&p);
}

static cables_status
collect(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)err;
	buf_append(arg, p, n);
	return CABLES_OK;
}

/*
 * The receiving milter's order on a padded, protected entity: cut the
 * padding, restore the header, cut the legacy display; what is left is the
 * sender's content entity.
 */
static void
test_padding_then_header_protection(void **state)
{
	static const char head[] = "From: a@a.test\r\nTo: b@b.test\r\nSubject: Keys\r\nContent-Type: text/plain\r\n";
	static const char body[] = "The spare keys are under the blue pot.\r\n";
	static const struct pad_cost plain = { 0, 1, 1 };
	struct hp_protect p;
	struct hp_restore r;
	struct hp_insert ins[HP_INSERTS_MAX];
	struct buf entity, padded;
	bool top;
	size_t n, skip;
	char *ct, *shown;

	assert_int_equal(hp_protect(head, strlen(head), HP_POLICY_BASELINE, &p, NULL), CABLES_OK);
	n = hp_legacy_inserts(body, strlen(body), " text/plain", NULL, NULL, &p.legacy, &top, ins, HP_INSERTS_MAX);
	assert_int_equal(n, 1);
	ct = hp_content_type(" text/plain", top, NULL);
	buf_init(&entity);
	buf_append(&entity, p.inner.data, p.inner.len);
	buf_printf(&entity, "Content-Type:%s\r\n\r\n", ct);
	buf_append(&entity, ins[0].text.data, ins[0].text.len);
	buf_appends(&entity, body);
	buf_init(&padded);
	assert_int_equal(pad_write(pad_target(entity.len, &plain, 0) - entity.len, collect, &padded, NULL), CABLES_OK);
	buf_append(&padded, entity.data, entity.len);
	assert_int_equal(padded.len, 4096);

	skip = pad_strip(padded.data, padded.len);
	assert_int_equal(skip, 4096 - entity.len);
	assert_int_equal(hp_restore(padded.data + skip, padded.len - skip, "Subject: [...]\r\n", 16, HP_IN_ENCRYPTION,
	    &r, NULL), CABLES_OK);
	assert_string_equal(r.content.data, "Content-Type: text/plain\r\n");
	shown = cut_body(padded.data + skip, padded.len - skip, &r);
	assert_string_equal(shown, body);
	free(shown);
	hp_restore_release(&r);
	hp_inserts_release(ins, n);
	hp_protect_release(&p);
	buf_release(&entity);
	buf_release(&padded);
	free(ct);
	(void)state;
}

static void
test_round_trip_is_byte_for_byte(void **state)
{
	round_trip(" text/plain; charset=us-ascii", "Line one.\r\n\r\nLine three.\r\n", 1,
	    "\r\n\r\nSubject: Plans\r\n\r\nLine one.");
	round_trip(" text/plain;\r\n\tformat=flowed", "Subject: looks like a field\r\n\r\nbut is the body\r\n", 1, NULL);
	round_trip(" text/html; charset=utf-8", "<html><body>\r\n<p>Hi</p>\r\n</body></html>\r\n", 1,
	    "<html><body><div class=\"header-protection-legacy-display\"><pre>\r\nSubject: Plans\r\n</pre></div>\r\n\r\n<p>");
	round_trip(" text/plain", "", 1, NULL);
	round_trip(" application/pdf", "%PDF-1.4\r\n", 0, NULL);
	/* The first part of a mixed, not the attachment after it. */
	round_trip(" multipart/mixed; boundary=\"q\"", "--q\r\nContent-Type: text/plain\r\n\r\nx\r\n"
	    "--q\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\ny\r\n--q--\r\n", 2,
	    "--q\r\nContent-Type: text/plain; hp-legacy-display=\"1\"\r\n\r\nSubject: Plans\r\n\r\nx\r\n");
	/* Both renderings of an alternative, inside a mixed with an attachment. */
	round_trip(" multipart/mixed; boundary=\"o\"",
	    "preamble\r\n--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n"
	    "--i\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nplain\r\n"
	    "--i\r\nContent-Type: text/html;\r\n charset=utf-8\r\n\r\n<html><BODY>\r\n<p>rich</p></body></html>\r\n"
	    "--i--\r\n\r\n--o\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--o--\r\n", 4,
	    "Content-Type: text/html;\r\n charset=utf-8; hp-legacy-display=\"1\"\r\n\r\n<html><BODY><div class=");
	/* Encodings we do not rewrite, and a part without a Content-Type: left alone. */
	round_trip(" multipart/alternative; boundary=\"a\"",
	    "--a\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nq=3D\r\n"
	    "--a\r\n\r\nno header\r\n--a--\r\n", 0, NULL);
	(void)state;
}

/* Whom the protected To and Cc name (hp_restore_names): the replay mark's judge. */
static void
test_restore_names_recipients(void **state)
{
	static const struct addr_opts folded = { false, "+" };
	static const char outer[] = "From: alice@a.test\r\nTo: dave@b.test\r\nCc: eve@b.test\r\nSubject: [...]\r\n";
	static const struct {
		const char *payload, *addr;
		bool named;
	} cases[] = {
		{ "To: Bob <bob@b.test>\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx", "bob@b.test", true },
		{ "To: Bob <bob@b.test>\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx", "dave@b.test", false },
		{ "To: Bob <BOB+lists@B.test>\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx", "bob@b.test", true },
		{ "To: bob@b.test\r\nCc: x@c.test, Dave <dave@b.test>\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx",
		    "dave@b.test", true },
		{ "To: Team: bob@b.test, dave@b.test;\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx", "dave@b.test",
		    true },
		/* RFC 9788: no protected To or Cc, so the outer ones go, and no one is named. */
		{ "Subject: hi\r\nContent-Type: text/plain; hp=\"cipher\"\r\n\r\nx", "dave@b.test", false },
		/* v1 without To or Cc: the outer ones stay; nothing to judge by. */
		{ "Subject: hi\r\nContent-Type: text/plain; protected-headers=\"v1\"\r\n\r\nx", "dave@b.test", true },
		{ "To: bob@b.test\r\nContent-Type: text/plain; protected-headers=\"v1\"\r\n\r\nx", "dave@b.test", false },
		/* No header protection: nothing restored, nothing judged. */
		{ "To: bob@b.test\r\nContent-Type: text/plain\r\n\r\nx", "dave@b.test", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hp_restore r;

		assert_int_equal(hp_restore(cases[i].payload, strlen(cases[i].payload), outer, strlen(outer),
		    HP_IN_ENCRYPTION, &r, NULL), CABLES_OK);
		if (hp_restore_names(&r, cases[i].addr, &folded) != cases[i].named)
			fail_msg("case %zu: %s is %snamed", i, cases[i].addr, cases[i].named ? "not " : "");
		hp_restore_release(&r);
	}
	(void)state;
}

static void
test_names(void **state)
{
	enum hp_policy p;

	for (int i = HP_POLICY_NONE; i <= HP_POLICY_SHY; i++) {
		assert_true(hp_policy_parse(hp_policy_name((enum hp_policy)i), &p));
		assert_int_equal(p, i);
	}
	assert_false(hp_policy_parse("strict", &p));
	assert_int_equal(hp_field_class("content-padding", 15), HP_CLASS_STRUCTURAL);
	assert_int_equal(hp_field_class("RECEIVED", 8), HP_CLASS_TRANSPORT);
	assert_int_equal(hp_field_class("Resent-From", 11), HP_CLASS_TRANSPORT);
	assert_int_equal(hp_field_class("X-Cables-Reinjected", 19), HP_CLASS_TRANSPORT);
	assert_int_equal(hp_field_class("in-reply-to", 11), HP_CLASS_USER);
	assert_int_equal(hp_field_class("List-Id", 7), HP_CLASS_OTHER);
	assert_string_equal(hp_scheme_name(HP_SCHEME_V1), "protected-headers-v1");
	(void)state;
}

static int
setup_group(void **state)
{
	mime_init();
	(void)state;
	return 0;
}

/* ---- who wrote it: protected From and Sender ---- */

/* signed_by for the tests: arg is a NULL-terminated list of addresses a verified signature vouches for. */
static bool
vouch_list(void *arg, const char *addr)
{
	for (const char *const *a = arg; a != NULL && *a != NULL; a++)
		if (strcmp(*a, addr) == 0)
			return true;
	return false;
}

#define IDENT_OUTER(from) \
	"Received: from mx.evil.test by mx.b.test\r\n" \
	"From: " from "\r\n" \
	"To: bob@b.test\r\n" \
	"Subject: [...]\r\n" \
	"Date: Thu, 03 Dec 2026 09:00:00 +0000\r\n" \
	"Message-ID: <id1@evil.test>\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"

static void
test_restore_identity_from_needs_its_own_signature(void **state)
{
	static const char *const none[] = { NULL };
	static const char *const attacker[] = { "attacker@evil.test", NULL };
	static const char *const ceo[] = { "ceo@b.test", NULL };
	static const char *const ceo_sub[] = { "ceo+x@b.test", NULL };
	static const struct {
		const char *outer_from;		/* outer From value */
		const char *inner;		/* protected fields (From, Sender...) */
		const char *const *vouched;	/* addresses a verified signature was made by */
		enum hp_identity from, sender;
		const char *claimed;
		const char *after_from;		/* the From after the edits */
		const char *after_sender;	/* the Sender after the edits, or NULL for none */
	} cases[] = {
		/* (a) unsigned, another address inside: the outer From stays. */
		{ "attacker@evil.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " attacker@evil.test", NULL },
		/* (b) signed, but by the attacker's own key: still the outer. */
		{ "attacker@evil.test", "From: CEO <ceo@b.test>\r\n", attacker, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " attacker@evil.test", NULL },
		/* (c) signed by the protected From's own key: restored. */
		{ "attacker@evil.test", "From: CEO <ceo@b.test>\r\n", ceo, HP_IDENTITY_SIGNED, HP_IDENTITY_NONE,
		    "", " CEO <ceo@b.test>", NULL },
		/* (d) the same address: restored unsigned, display name and all. */
		{ "alice@a.test", "From: Alice Liddell <Alice@A.TEST>\r\n", none, HP_IDENTITY_SAME,
		    HP_IDENTITY_NONE, "", " Alice Liddell <Alice@A.TEST>", NULL },
		/* Case and display names do not count, sub-addresses do. */
		{ "Alice <alice@a.test>", "From: alice+x@a.test\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "alice+x@a.test", " Alice <alice@a.test>", NULL },
		{ "attacker@evil.test", "From: ceo+x@b.test\r\n", ceo, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo+x@b.test", " attacker@evil.test", NULL },
		{ "attacker@evil.test", "From: ceo+x@b.test\r\n", ceo_sub, HP_IDENTITY_SIGNED, HP_IDENTITY_NONE, "",
		    " ceo+x@b.test", NULL },
		/* An address the outer From does not have, beside one it has: the new one must be signed. */
		{ "attacker@evil.test", "From: attacker@evil.test, ceo@b.test\r\nSender: attacker@evil.test\r\n",
		    none, HP_IDENTITY_KEPT, HP_IDENTITY_SAME, "ceo@b.test", " attacker@evil.test",
		    " attacker@evil.test" },
		/*
		 * An address the outer section has only as a Sender is not the edge's From: From must not
		 * take it (and the outer-only Sender goes, as RFC 9788 restoration has it).
		 */
		{ "attacker@evil.test\r\nSender: ceo@b.test", "From: ceo@b.test\r\n", none, HP_IDENTITY_KEPT,
		    HP_IDENTITY_NONE, "ceo@b.test", " attacker@evil.test", NULL },
		/* No address to vouch for: a group, a bare name, an address we cannot read. */
		{ "attacker@evil.test", "From: The CEO:;\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "(no address)", " attacker@evil.test", NULL },
		{ "attacker@evil.test", "From: \"ceo@b.test\"\r\n", ceo, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "(no address)", " attacker@evil.test", NULL },
		/* A display name that reads like an address is the sender's choice, outside as inside. */
		{ "attacker@evil.test", "From: \"ceo@b.test\" <attacker@evil.test>\r\n", none, HP_IDENTITY_SAME,
		    HP_IDENTITY_NONE, "", " \"ceo@b.test\" <attacker@evil.test>", NULL },
		/*
		 * What is restored is what was parsed, written one way: a comment naming someone else
		 * becomes a quoted display name beside the address in angle brackets, so no client's
		 * parser can read another address out of it.
		 */
		{ "attacker@evil.test", "From: attacker@evil.test (CEO <ceo@b.test>)\r\n", none, HP_IDENTITY_SAME,
		    HP_IDENTITY_NONE, "", " \"CEO <ceo@b.test>\" <attacker@evil.test>", NULL },
		{ "attacker@evil.test", "From: <@b.test:ceo@b.test>\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " attacker@evil.test", NULL },
		/* Sender is an identity too: added only under its own signature. */
		{ "attacker@evil.test", "From: attacker@evil.test\r\nSender: ceo@b.test\r\n", none,
		    HP_IDENTITY_SAME, HP_IDENTITY_KEPT, "ceo@b.test", " attacker@evil.test", NULL },
		{ "attacker@evil.test", "From: attacker@evil.test\r\nSender: ceo@b.test\r\n", ceo,
		    HP_IDENTITY_SAME, HP_IDENTITY_SIGNED, "", " attacker@evil.test", " ceo@b.test" },
		/*
		 * The outer From names one author only when it is one field with one mailbox: a
		 * protected From that picks one out of several outer ones, or out of two From
		 * fields, names someone the edge's checks need not have been about.
		 */
		{ "attacker@evil.test, ceo@b.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT,
		    HP_IDENTITY_NONE, "ceo@b.test", " attacker@evil.test, ceo@b.test", NULL },
		{ "attacker@evil.test\r\nFrom: ceo@b.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT,
		    HP_IDENTITY_NONE, "ceo@b.test", " attacker@evil.test", NULL },
		{ "Board: ceo@b.test;", "From: ceo@b.test\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " Board: ceo@b.test;", NULL },
		{ "attacker@evil.test, ceo@b.test", "From: attacker@evil.test, ceo@b.test\r\nSender: ceo@b.test\r\n",
		    none, HP_IDENTITY_KEPT, HP_IDENTITY_KEPT, "attacker@evil.test", " attacker@evil.test, ceo@b.test",
		    NULL },
		/*
		 * An outer From read strictly: a value our parser reads leniently (a second '@',
		 * a stray ';', a route) names no one, so the protected From needs its signature.
		 */
		{ "ceo@b.test@evil.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " ceo@b.test@evil.test", NULL },
		{ "ceo@b.test;a@evil.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " ceo@b.test;a@evil.test", NULL },
		{ "<@evil.test:ceo@b.test>", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " <@evil.test:ceo@b.test>", NULL },
		{ "(\") x@evil.test (\") ceo@b.test", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_KEPT,
		    HP_IDENTITY_NONE, "ceo@b.test", " (\") x@evil.test (\") ceo@b.test", NULL },
		/* Quoted commas and '@'s, comments and folds are no doubt. */
		{ "\"Board, CEO@b\" <ceo@b.test> (the CEO)", "From: ceo@b.test\r\n", none, HP_IDENTITY_SAME,
		    HP_IDENTITY_NONE, "", " ceo@b.test", NULL },
		{ "The CEO\r\n <ceo@b.test>", "From: CEO <ceo@b.test>\r\n", none, HP_IDENTITY_SAME,
		    HP_IDENTITY_NONE, "", " CEO <ceo@b.test>", NULL },
		/* FROM in capitals is the same field. */
		{ "attacker@evil.test", "FROM: ceo@b.test\r\n", none, HP_IDENTITY_KEPT, HP_IDENTITY_NONE,
		    "ceo@b.test", " attacker@evil.test", NULL },
	};
	struct addr_opts exact = { false, "" };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *outer = xasprintf("Received: from mx.evil.test by mx.b.test\r\nFrom: %s\r\nTo: bob@b.test\r\n"
		    "Subject: [...]\r\nMessage-ID: <id1@evil.test>\r\n", cases[i].outer_from);
		char *payload = xasprintf("%sTo: bob@b.test\r\nSubject: Board meeting\r\n"
		    "Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"\r\n\r\nHello\r\n", cases[i].inner);
		struct hp_vouch v = { &exact, vouch_list, (void *)cases[i].vouched };
		struct hp_identities id;
		struct hp_restore r;
		struct cables_err err;
		char *after, *from, *sender, *want;

		assert_int_equal(hp_restore(payload, strlen(payload), outer, strlen(outer), HP_IN_ENCRYPTION, &r, &err),
		    CABLES_OK);
		hp_restore_identity(&r, outer, strlen(outer), &v, &id);
		if (id.from != cases[i].from || id.sender != cases[i].sender ||
		    strcmp(id.claimed, cases[i].claimed) != 0)
			fail_msg("case %zu: from=%s sender=%s claimed='%s'", i, hp_identity_name(id.from),
			    hp_identity_name(id.sender), id.claimed);
		after = apply_edits(outer, strlen(outer), &r.outer);
		want = xasprintf("\r\nFrom:%s\r\n", cases[i].after_from);
		from = strstr(after, want);
		if (from == NULL)
			fail_msg("case %zu: no '%s' in\n%s", i, cases[i].after_from, after);
		free(want);
		sender = strstr(after, "\r\nSender:");
		if (cases[i].after_sender == NULL) {
			if (sender != NULL)
				fail_msg("case %zu: a Sender was added:\n%s", i, after);
		} else {
			want = xasprintf("\r\nSender:%s\r\n", cases[i].after_sender);
			if (strstr(after, want) == NULL)
				fail_msg("case %zu: no Sender '%s' in\n%s", i, cases[i].after_sender, after);
			free(want);
		}
		/* Fields that name no one keep today's behaviour. */
		assert_non_null(strstr(after, "Subject: Board meeting\r\n"));
		free(after);
		hp_restore_release(&r);
		free(outer);
		free(payload);
	}
	(void)state;
}

/* A long From or Sender let out is folded after its commas, each line within 78 characters. */
static void
test_restore_identity_folds_a_long_from(void **state)
{
	static const char *const signers[] = { "bravo@b.test", "charlie@b.test", "delta@b.test", NULL };
	static const char outer[] = IDENT_OUTER("a@evil.test");
	static const char payload[] = "From: Alpha Person <a@evil.test>, Bravo Person <bravo@b.test>, "
	    "\"Person, Charlie\" <charlie@b.test>, Delta <delta@b.test>\r\nSubject: Board meeting\r\n"
	    "Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"\r\n\r\nHello\r\n";
	struct addr_opts exact = { false, "" };
	struct hp_vouch v = { &exact, vouch_list, (void *)signers };
	struct hp_identities id;
	struct hp_restore r;
	struct cables_err err;
	char *after;
	size_t col = 0;

	assert_int_equal(hp_restore(payload, strlen(payload), outer, strlen(outer), HP_IN_ENCRYPTION, &r, &err),
	    CABLES_OK);
	hp_restore_identity(&r, outer, strlen(outer), &v, &id);
	assert_int_equal(id.from, HP_IDENTITY_SIGNED);
	after = apply_edits(outer, strlen(outer), &r.outer);
	if (strstr(after, "\r\nFrom: Alpha Person <a@evil.test>, Bravo Person <bravo@b.test>,\r\n"
	    "\t\"Person, Charlie\" <charlie@b.test>, Delta <delta@b.test>\r\n") == NULL)
		fail_msg("%s", after);
	for (const char *p = after; *p != '\0'; p++) {
		col = *p == '\n' ? 0 : col + (*p != '\r');
		if (col > 78)
			fail_msg("a line over 78 characters:\n%s", after);
	}
	free(after);
	hp_restore_release(&r);
	(void)state;
}

static void
test_restore_identity_v1_and_signed_payloads(void **state)
{
	static const char *const none[] = { NULL };
	const char *outer = IDENT_OUTER("attacker@evil.test");
	const char *v1 = "From: ceo@b.test\r\nSubject: Wire the money\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"; protected-headers=\"v1\"\r\n\r\n--b1--\r\n";
	struct addr_opts exact = { false, "" };
	struct hp_vouch v = { &exact, vouch_list, (void *)none }, nobody = { &exact, NULL, NULL };
	struct hp_identities id;
	struct hp_restore r;
	struct cables_err err;
	char *edits;

	/* Thunderbird's form: the same rule. */
	assert_int_equal(hp_restore(v1, strlen(v1), outer, strlen(outer), HP_IN_ENCRYPTION, &r, &err), CABLES_OK);
	assert_int_equal(r.scheme, HP_SCHEME_V1);
	hp_restore_identity(&r, outer, strlen(outer), &v, &id);
	assert_int_equal(id.from, HP_IDENTITY_KEPT);
	edits = edits_text(&r.outer);
	assert_null(strstr(edits, "From"));
	assert_non_null(strstr(edits, "set Subject 1 Wire the money\n"));
	free(edits);
	hp_restore_release(&r);
	/* A signed payload whose signature the caller could not tie to anyone (no signed_by). */
	assert_int_equal(hp_restore(v1, strlen(v1), outer, strlen(outer), HP_IN_ENCRYPTION | HP_SIGNED, &r, &err),
	    CABLES_OK);
	hp_restore_identity(&r, outer, strlen(outer), &nobody, &id);
	assert_int_equal(id.from, HP_IDENTITY_KEPT);
	assert_string_equal(id.claimed, "ceo@b.test");
	hp_restore_release(&r);
	/* Nothing protected: nothing decided. */
	assert_int_equal(hp_restore("Content-Type: text/plain\r\n\r\nx", 29, outer, strlen(outer), HP_IN_ENCRYPTION,
	    &r, &err), CABLES_OK);
	hp_restore_identity(&r, outer, strlen(outer), &v, &id);
	assert_int_equal(id.from, HP_IDENTITY_NONE);
	assert_int_equal(id.sender, HP_IDENTITY_NONE);
	assert_int_equal(r.outer.n, 0);
	hp_restore_release(&r);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protect_baseline_hides_subject_and_keeps_what_mtas_need),
		cmocka_unit_test(test_protect_none_hides_nothing_but_protects_everything),
		cmocka_unit_test(test_protect_shy_drops_display_names_and_time_zone),
		cmocka_unit_test(test_protect_shy_field_by_field),
		cmocka_unit_test(test_restore_names_recipients),
		cmocka_unit_test(test_protect_duplicated_fields_are_each_protected_and_hidden),
		cmocka_unit_test(test_protect_lf_input_and_missing_fields),
		cmocka_unit_test(test_protect_refuses_injection),
		cmocka_unit_test(test_huge_headers_are_refused),
		cmocka_unit_test(test_content_type_marking),
		cmocka_unit_test(test_legacy_kind),
		cmocka_unit_test(test_legacy_element_text_and_html),
		cmocka_unit_test(test_legacy_html_offset),
		cmocka_unit_test(test_restore_rfc9788_baseline),
		cmocka_unit_test(test_restore_legacy_text_is_cut),
		cmocka_unit_test(test_restore_legacy_html_is_cut),
		cmocka_unit_test(test_restore_outer_only_addressing_is_dropped),
		cmocka_unit_test(test_restore_thunderbird_v1_with_display_part),
		cmocka_unit_test(test_v1_display_part_must_look_like_one),
		cmocka_unit_test(test_restore_never_takes_transport_fields_from_inside),
		cmocka_unit_test(test_restore_duplicates),
		cmocka_unit_test(test_restore_v1_keeps_outer_only_fields),
		cmocka_unit_test(test_restore_without_protection_changes_nothing),
		cmocka_unit_test(test_restore_signed_payload_keeps_its_bytes),
		cmocka_unit_test(test_restore_refuses_malformed_payloads),
		cmocka_unit_test(test_legacy_text_strip_needs_field_lines),
		cmocka_unit_test(test_legacy_html_strip_needs_the_div),
		cmocka_unit_test(test_legacy_cuts_in_main_body_parts_only),
		cmocka_unit_test(test_legacy_cuts_single_and_v1),
		cmocka_unit_test(test_round_trip_is_byte_for_byte),
		cmocka_unit_test(test_padding_then_header_protection),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_restore_identity_from_needs_its_own_signature),
		cmocka_unit_test(test_restore_identity_v1_and_signed_payloads),
		cmocka_unit_test(test_restore_identity_folds_a_long_from),
	};

	return cmocka_run_group_tests_name("hp", tests, setup_group, NULL);
}
