/*
 * test_keydproto - the cables-keyd protocol: good requests, and every kind
 * of bad one named; requests formatted by the typed formatters parse back,
 * and what keyd would refuse is not formatted; lookup, list, import and
 * delete replies formatted and parsed back, bad replies refused; every
 * enum word parses back.  The RCPT-time check: its request formats and
 * parses like a lookup's, its reply round-trips, bad ones are refused.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "keydproto.h"
#include "util.h"

static void
parses(const char *text, enum keyd_request_type type, size_t naddresses)
{
	struct keyd_request req;
	struct cables_err err;

	if (keyd_request_parse(text, strlen(text), &req, &err) != CABLES_OK)
		fail_msg("'%s' did not parse: %s", text, err.msg);
	assert_int_equal(req.type, type);
	assert_int_equal(req.naddresses, naddresses);
	keyd_request_release(&req);
}

static void
refused(const char *text, size_t len, const char *reason)
{
	struct keyd_request req;
	struct cables_err err;

	assert_int_equal(keyd_request_parse(text, len, &req, &err), CABLES_ERR_SYNTAX);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': expected '%s', got '%s'", text, reason, err.msg);
	keyd_request_release(&req);
}

static void
test_good_requests(void **state)
{
	static const char given[] = "request=lookup\naddress=Bob+x@B.test\n";
	struct keyd_request req;

	parses("request=lookup\naddress=bob@b.test\n", KEYD_LOOKUP, 1);
	parses("request=lookup\r\naddress=bob@b.test\r\naddress=carol@c.test", KEYD_LOOKUP, 2);
	parses("address=bob@b.test\nrequest=lookup\n", KEYD_LOOKUP, 1);
	parses("request=stats\n", KEYD_STATS, 0);
	parses("request=list\n", KEYD_LIST, 0);
	parses("request=delete\naddress=bob@b.test\n", KEYD_DELETE, 1);
	parses("request=delete\naddress=bob@b.test\nfingerprint=0123abcdEF\n", KEYD_DELETE, 1);
	parses("request=import\naddress=bob@b.test\nformat=pgp\ndata=AAEC\ndata=AwQ=\nforce=yes\n", KEYD_IMPORT, 1);
	assert_int_equal(keyd_request_parse(given, sizeof(given) - 1, &req, NULL), CABLES_OK);
	assert_string_equal(req.addresses[0], "Bob+x@B.test");	/* as given: keyd normalises */
	keyd_request_release(&req);
}

static void
test_import_fields(void **state)
{
	static const char text[] = "request=import\naddress=bob@b.test\nformat=smime\ndata=AAEC\ndata=AwQ=\n";
	static const char fpr[] = "request=delete\naddress=bob@b.test\nfingerprint=0123abcd\n";
	struct keyd_request req;

	assert_int_equal(keyd_request_parse(text, sizeof(text) - 1, &req, NULL), CABLES_OK);
	assert_string_equal(req.format, "smime");
	assert_false(req.force);
	/* data= lines are joined in order */
	assert_int_equal(req.data.len, 8);
	assert_memory_equal(req.data.data, "AAECAwQ=", 8);
	keyd_request_release(&req);
	assert_int_equal(keyd_request_parse(fpr, sizeof(fpr) - 1, &req, NULL), CABLES_OK);
	assert_string_equal(req.fingerprint, "0123abcd");
	assert_null(req.format);
	keyd_request_release(&req);
}

/* A request written as a string literal (it may hold a NUL), refused with reason. */
#define REFUSED(literal, reason) refused(literal, sizeof(literal) - 1, reason)

static void
test_bad_requests_say_why(void **state)
{
	struct buf many;
	char line[KEYD_LINE_MAX + 40];

	REFUSED("", "no request= line");
	REFUSED("address=bob@b.test\n", "no request= line");
	REFUSED("request=lookup\n", "lookup without an address= line");
	REFUSED("request=stats\naddress=bob@b.test\n", "stats takes nothing but request=");
	REFUSED("request=list\nformat=pgp\n", "list takes nothing but request=");
	REFUSED("request=lookup\naddress=a@b.test\nformat=pgp\n", "a lookup takes address= lines only");
	REFUSED("request=import\naddress=a@b.test\nformat=pgp\n", "import needs one address=, a format= and data= lines");
	REFUSED("request=import\naddress=a@b.test\naddress=c@b.test\nformat=pgp\ndata=AA==\n", "import needs one address=");
	REFUSED("request=import\naddress=a@b.test\nformat=x509\ndata=AA==\n", "line 3: 'x509' is not a format (smime, pgp)");
	REFUSED("request=import\naddress=a@b.test\nformat=pgp\ndata=A*A\n", "line 4: 'A*A' is not base64");
	REFUSED("request=import\naddress=a@b.test\nformat=pgp\ndata=AA==\nforce=maybe\n", "line 5: 'maybe' is not yes or no");
	REFUSED("request=import\naddress=a@b.test\nformat=pgp\nformat=pgp\ndata=AA==\n", "line 4: 'pgp' is a second format");
	REFUSED("request=import\naddress=a@b.test\nformat=pgp\ndata=AA==\nfingerprint=01234567\n", "import takes no fingerprint=");
	REFUSED("request=delete\n", "delete needs one address=");
	REFUSED("request=delete\naddress=a@b.test\nfingerprint=0123\n", "'0123' is not a hex fingerprint prefix of 8 to 64 digits");
	REFUSED("request=delete\naddress=a@b.test\nfingerprint=0123456g\n", "is not a hex fingerprint prefix");
	REFUSED("request=delete\naddress=a@b.test\ndata=AA==\n", "delete takes address= and fingerprint= only");
	REFUSED("request=lookup\nrequest=lookup\naddress=a@b.test\n", "line 2: request given twice");
	REFUSED("request=frobnicate\n", "line 1: unknown request 'frobnicate'");
	REFUSED("request=lookup\nfoo=bar\n", "line 2: unknown name 'foo'");
	REFUSED("request=lookup\nno equals sign\n", "line 2: not name=value");
	REFUSED("request=lookup\n=value\n", "line 2: not name=value");
	REFUSED("request=lookup\naddress=not-an-address\n", "line 2: 'not-an-address' is not an email address");
	REFUSED("request=lookup\naddress=a\0b@c.test\n", "line 2: NUL byte");
	REFUSED("request=lookup\n\naddress=a@b.test\n", "line 2: empty line inside the request");
	REFUSED("request=lookup\naddress=\x1b[31m@x\n", "is not an email address");
	memset(line, 'x', sizeof(line));
	memcpy(line, "address=", 8);
	refused(line, sizeof(line), "longer than 1024 bytes");
	buf_init(&many);
	buf_appends(&many, "request=lookup\n");
	for (int i = 0; i <= KEYD_ADDRESSES_MAX; i++)
		buf_printf(&many, "address=u%d@d.test\n", i);
	refused(many.data, many.len, "line 1002: 'u1000@d.test' is one address too many (1000 at most in one request)");
	buf_release(&many);
}

/* A message to a list: 300 remote recipients fit one request (issue 13: 64 was a cap that stopped mail). */
static void
test_a_list_fits_one_request(void **state)
{
	struct keyd_request req;
	struct buf many;

	buf_init(&many);
	buf_appends(&many, "request=lookup\n");
	for (int i = 0; i < 300; i++)
		buf_printf(&many, "address=member%d@lists.test\n", i);
	assert_int_equal(keyd_request_parse(many.data, many.len, &req, NULL), CABLES_OK);
	assert_int_equal(req.naddresses, 300);
	assert_string_equal(req.addresses[299], "member299@lists.test");
	keyd_request_release(&req);
	buf_release(&many);
}

static void
test_sanitize_removes_control_characters(void **state)
{
	char s[] = "a\nb\rc\x1b\x7f" "d";

	keyd_sanitize(s);
	assert_string_equal(s, "a?b?c??d");
}

/* Every enum word parses back to its value; words that are not one do not parse. */
static void
test_names_parse_back(void **state)
{
	enum keyd_outcome o;
	enum keyd_format f;
	enum keyd_source src;
	enum keyd_trust t;

	for (int i = KEYD_OUTCOME_FOUND; i <= KEYD_OUTCOME_REJECT; i++) {
		assert_true(keyd_outcome_parse(keyd_outcome_name((enum keyd_outcome)i), &o));
		assert_int_equal(o, i);
	}
	for (int i = KEYD_FORMAT_SMIME; i <= KEYD_FORMAT_PGP; i++) {
		assert_true(keyd_format_parse(keyd_format_name((enum keyd_format)i), &f));
		assert_int_equal(f, i);
	}
	for (int i = KEYD_SOURCE_GENERATED; i <= KEYD_SOURCE_WKD; i++) {
		assert_true(keyd_source_parse(keyd_source_name((enum keyd_source)i), &src));
		assert_int_equal(src, i);
	}
	for (int i = KEYD_TRUST_LOCAL; i <= KEYD_TRUST_INSECURE; i++) {
		assert_true(keyd_trust_parse(keyd_trust_name((enum keyd_trust)i), &t));
		assert_int_equal(t, i);
	}
	for (int i = KEYD_CHECK_CACHED; i <= KEYD_CHECK_UNRESPONSIVE; i++) {
		enum keyd_check_state cs;

		assert_true(keyd_check_state_parse(keyd_check_state_name((enum keyd_check_state)i), &cs));
		assert_int_equal(cs, i);
	}
	for (int i = KEYD_LOOKUP; i <= KEYD_CHECK; i++) {
		enum keyd_request_type rt;

		assert_true(keyd_request_type_parse(keyd_request_type_name((enum keyd_request_type)i), &rt));
		assert_int_equal(rt, i);
	}
	assert_string_equal(keyd_request_type_name((enum keyd_request_type)99), "?");
	assert_false(keyd_outcome_parse("Found", &o));
	assert_false(keyd_format_parse("x509", &f));
	assert_false(keyd_source_parse("dns", &src));
	assert_false(keyd_trust_parse("", &t));
	assert_int_equal(keyd_trust_of(KEYD_SOURCE_DNS_DNSSEC), KEYD_TRUST_DNSSEC);
	assert_int_equal(keyd_trust_of(KEYD_SOURCE_DNS_INSECURE), KEYD_TRUST_INSECURE);
	assert_int_equal(keyd_trust_of(KEYD_SOURCE_PEER), KEYD_TRUST_LOCAL);
}

/* What keyd formats, a client parses: keys with their result, outcomes and reasons, in order. */
static void
test_reply_round_trip(void **state)
{
	struct keyd_key k = { "bob@b.test", KEYD_FORMAT_SMIME, KEYD_SOURCE_DNS_DNSSEC, KEYD_TRUST_DNSSEC,
		"3f2a9c01", 1830000000 };
	struct keyd_lookup_reply r;
	struct buf out;

	buf_init(&out);
	keyd_key_format(&out, &k);
	k.format = KEYD_FORMAT_PGP;
	keyd_key_format(&out, &k);
	keyd_result_format(&out, "bob@b.test", KEYD_OUTCOME_FOUND, NULL);
	keyd_result_format(&out, "carol@c.test", KEYD_OUTCOME_NONE, "no such record (proven by NSEC)");
	keyd_result_format(&out, "dave@d.test", KEYD_OUTCOME_TEMPFAIL, "no answer:\nnewline");
	keyd_result_format(&out, "erin@e.test", KEYD_OUTCOME_REJECT, "key change");
	buf_appends(&out, "\n");
	assert_non_null(strstr(out.data, "key=bob@b.test format=smime source=dns-dnssec trust=dnssec fingerprint=3f2a9c01 "
	    "expires=1830000000\n"));
	assert_non_null(strstr(out.data, "result=dave@d.test tempfail reason=no answer:?newline\n"));
	assert_int_equal(keyd_lookup_reply_parse(out.data, out.len, &r, NULL), CABLES_OK);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.results[0].address, "bob@b.test");
	assert_int_equal(r.results[0].outcome, KEYD_OUTCOME_FOUND);
	assert_int_equal(r.results[0].nkeys, 2);
	assert_int_equal(r.results[0].keys[1].format, KEYD_FORMAT_PGP);
	assert_int_equal(r.results[0].keys[0].source, KEYD_SOURCE_DNS_DNSSEC);
	assert_int_equal(r.results[0].keys[0].expires, 1830000000);
	assert_string_equal(r.results[0].keys[0].fingerprint, "3f2a9c01");
	assert_string_equal(r.results[0].reason, "");
	assert_int_equal(r.results[1].outcome, KEYD_OUTCOME_NONE);
	assert_int_equal(r.results[1].nkeys, 0);
	assert_string_equal(r.results[1].reason, "no such record (proven by NSEC)");
	assert_int_equal(r.results[2].outcome, KEYD_OUTCOME_TEMPFAIL);
	assert_int_equal(r.results[3].outcome, KEYD_OUTCOME_REJECT);
	keyd_lookup_reply_release(&r);
	buf_release(&out);
}

static void
reply_refused(const char *text, const char *reason)
{
	struct keyd_lookup_reply r;
	struct cables_err err;

	assert_int_equal(keyd_lookup_reply_parse(text, strlen(text), &r, &err), CABLES_ERR_SYNTAX);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': expected '%s', got '%s'", text, reason, err.msg);
	keyd_lookup_reply_release(&r);
}

/* A reply that breaks the protocol is refused, never read best-effort. */
static void
test_bad_replies_refused(void **state)
{
	reply_refused("error=line 2: 'x' is not an email address\n\n", "cables-keyd refused the request: line 2: 'x' is");
	reply_refused("result=bob@b.test maybe\n", "reply line 1 is not");
	reply_refused("result=bob@b.test none because\n", "reply line 1 is not");
	reply_refused("result=bob@b.test\n", "reply line 1 is not");
	reply_refused("result=bob@b.test found\nstats=1\n", "reply line 2 is not");
	reply_refused("key=bob@b.test format=x509 source=store trust=local fingerprint=00 expires=1\nresult=bob@b.test found\n",
	    "reply line 1 is not");
	reply_refused("key=bob@b.test format=smime source=imported trust=local fingerprint=zz expires=1\nresult=bob@b.test found\n",
	    "reply line 1 is not");
	reply_refused("key=bob@b.test format=smime source=imported trust=local fingerprint=00 expires=1x\nresult=b@b.test found\n",
	    "reply line 1 is not");
	reply_refused("key=bob@b.test format=smime source=imported trust=local fingerprint=00 expires=1 extra=1\n",
	    "reply line 1 is not");
	reply_refused("key=bob@b.test format=smime source=imported trust=local fingerprint=00 expires=1\n",
	    "1 key= lines without their result= line");
}

/* A list reply: what keyd formats parses back; a line that is not a list line is refused. */
static void
test_list_reply(void **state)
{
	struct keyd_stored k = { "old@x.test", KEYD_FORMAT_SMIME, KEYD_SOURCE_IMPORTED, "0123abcd", 1577836800, 1609459200,
		false };
	struct keyd_list_reply r;
	struct cables_err err;
	struct buf out;

	buf_init(&out);
	keyd_stored_format(&out, &k);
	k.private_key = true;
	k.source = KEYD_SOURCE_GENERATED;
	keyd_stored_format(&out, &k);
	assert_string_equal(out.data, "key=old@x.test format=smime source=imported fingerprint=0123abcd not_before=1577836800 "
	    "expires=1609459200 private=no\nkey=old@x.test format=smime source=generated fingerprint=0123abcd "
	    "not_before=1577836800 expires=1609459200 private=yes\n");
	assert_int_equal(keyd_list_reply_parse(out.data, out.len, &r, NULL), CABLES_OK);
	assert_int_equal(r.n, 2);
	assert_false(r.keys[0].private_key);
	assert_true(r.keys[1].private_key);
	assert_int_equal(r.keys[1].source, KEYD_SOURCE_GENERATED);
	assert_int_equal(r.keys[0].not_before, 1577836800);
	keyd_list_reply_release(&r);
	buf_appends(&out, "key=a@b.test format=smime source=imported fingerprint=00 not_before=1 expires=2 private=maybe\n");
	assert_int_equal(keyd_list_reply_parse(out.data, out.len, &r, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "reply line 3 is not a key= line of a list"));
	keyd_list_reply_release(&r);
	assert_int_equal(keyd_list_reply_parse("", 0, &r, NULL), CABLES_OK);
	assert_int_equal(r.n, 0);
	keyd_list_reply_release(&r);
	buf_release(&out);
}

/* A formatted request (ending in its empty line) parsed as keyd parses it. */
static void
parse_formatted(const struct buf *b, struct keyd_request *req)
{
	struct cables_err err;

	assert_true(b->len >= 2 && b->data[b->len - 1] == '\n' && b->data[b->len - 2] == '\n');
	if (keyd_request_parse(b->data, b->len - 1, req, &err) != CABLES_OK)
		fail_msg("'%s' did not parse: %s", b->data, err.msg);
}

/* What the lookup formatter writes, keyd reads: the same addresses, in order. */
static void
test_lookup_request_round_trip(void **state)
{
	const char *addrs[] = { "bob@b.test", "Carol+x@C.test" };
	struct keyd_request req;
	struct buf out, many;
	const char **list = xcalloc(KEYD_ADDRESSES_MAX, sizeof(*list));

	buf_init(&out);
	assert_int_equal(keyd_lookup_request_format(&out, addrs, 2, NULL), CABLES_OK);
	assert_string_equal(out.data, "request=lookup\naddress=bob@b.test\naddress=Carol+x@C.test\n\n");
	parse_formatted(&out, &req);
	assert_int_equal(req.type, KEYD_LOOKUP);
	assert_int_equal(req.naddresses, 2);
	assert_string_equal(req.addresses[1], "Carol+x@C.test");
	keyd_request_release(&req);
	/* A full batch is one request keyd takes. */
	buf_init(&many);
	for (size_t i = 0; i < KEYD_ADDRESSES_MAX; i++)
		list[i] = "member@lists.test";
	assert_int_equal(keyd_lookup_request_format(&many, list, KEYD_ADDRESSES_MAX, NULL), CABLES_OK);
	parse_formatted(&many, &req);
	assert_int_equal(req.naddresses, KEYD_ADDRESSES_MAX);
	keyd_request_release(&req);
	buf_release(&many);
	free(list);
	buf_release(&out);
}

/* A formatter that refuses leaves out as it was and says why. */
#define FORMAT_REFUSED(call, reason) do { \
	struct cables_err err_; \
	struct buf out_; \
	buf_init(&out_); \
	buf_appends(&out_, "before"); \
	assert_int_equal((call), CABLES_ERR_ARG); \
	assert_string_equal(out_.data, "before"); \
	if (strstr(err_.msg, (reason)) == NULL) \
		fail_msg("expected '%s', got '%s'", (reason), err_.msg); \
	buf_release(&out_); \
} while (0)

/* An address of n bytes, "xxx...@example.test", for a line of 8 + n bytes. */
static char *
address_of(size_t n)
{
	char *a = xmalloc(n + 1);

	memset(a, 'x', n);
	memcpy(a + n - 13, "@example.test", 14);
	return a;
}

/* What keyd would refuse is not formatted: a client cannot smuggle lines into a request. */
static void
test_lookup_request_refused(void **state)
{
	const char *injected[] = { "bob@b.test\nrequest=stats" };
	const char *cr[] = { "bob@b.test\r" };
	const char *bad[] = { "bob@b.test", "not-an-address" };
	const char *ctl[] = { "a\x1b[31m@b.test" };
	const char *empty[] = { "" };
	const char *longest[] = { address_of(KEYD_LINE_MAX - 8) }, *longer[] = { address_of(KEYD_LINE_MAX - 7) };
	const char **list = xcalloc(KEYD_ADDRESSES_MAX + 1, sizeof(*list));
	struct keyd_request req;
	struct buf out;

	for (size_t i = 0; i <= KEYD_ADDRESSES_MAX; i++)
		list[i] = "member@lists.test";
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, injected, 1, &err_), "is not an email address cables-keyd takes");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, cr, 1, &err_), "is not an email address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, bad, 2, &err_), "'not-an-address' is not an email address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, ctl, 1, &err_), "'a?[31m@b.test' is not an email address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, empty, 1, &err_), "'' is not an email address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, longer, 1, &err_), "xxx...' is not an email address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, bad, 0, &err_), "a lookup needs at least one address");
	FORMAT_REFUSED(keyd_lookup_request_format(&out_, list, KEYD_ADDRESSES_MAX + 1, &err_),
	    "a lookup of 1001 addresses (1000 at most)");
	/* One byte shorter is the longest line keyd takes. */
	buf_init(&out);
	assert_int_equal(keyd_lookup_request_format(&out, longest, 1, NULL), CABLES_OK);
	parse_formatted(&out, &req);
	assert_string_equal(req.addresses[0], longest[0]);
	keyd_request_release(&req);
	buf_release(&out);
	free(list);
	free((char *)longest[0]);
	free((char *)longer[0]);
}

/* An import: the key travels in base64 lines keyd joins and decodes to the same bytes. */
static void
test_import_request_round_trip(void **state)
{
	unsigned char key[1000];
	struct keyd_request req;
	struct buf out;
	uint8_t *back;
	size_t back_len;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 7 + 3);
	buf_init(&out);
	assert_int_equal(keyd_import_request_format(&out, "bob@b.test", KEYD_FORMAT_PGP, true, key, sizeof(key), NULL),
	    CABLES_OK);
	assert_non_null(strstr(out.data, "request=import\naddress=bob@b.test\nformat=pgp\nforce=yes\ndata="));
	for (const char *l = out.data; *l != '\0'; l = strchr(l, '\n') + 1)
		assert_true(strcspn(l, "\n") <= 5 + 76);
	parse_formatted(&out, &req);
	assert_int_equal(req.type, KEYD_IMPORT);
	assert_string_equal(req.addresses[0], "bob@b.test");
	assert_string_equal(req.format, "pgp");
	assert_true(req.force);
	back = test_b64_decode(req.data.data, req.data.len, &back_len);
	assert_non_null(back);
	assert_int_equal(back_len, sizeof(key));
	assert_memory_equal(back, key, sizeof(key));
	free(back);
	keyd_request_release(&req);
	buf_reset(&out);
	assert_int_equal(keyd_import_request_format(&out, "bob@b.test", KEYD_FORMAT_SMIME, false, key, 1, NULL), CABLES_OK);
	parse_formatted(&out, &req);
	assert_string_equal(req.format, "smime");
	assert_false(req.force);
	assert_string_equal(req.data.data, "Aw==");
	keyd_request_release(&req);
	buf_release(&out);
}

static void
test_import_request_refused(void **state)
{
	size_t huge = KEYD_REQUEST_MAX / 4 * 3;	/* its base64 alone fills a request */
	unsigned char *key = xcalloc(1, huge);

	FORMAT_REFUSED(keyd_import_request_format(&out_, "bob@b.test\nforce=yes", KEYD_FORMAT_PGP, false, key, 10, &err_),
	    "is not an email address");
	FORMAT_REFUSED(keyd_import_request_format(&out_, "bob@b.test", (enum keyd_format)7, false, key, 10, &err_),
	    "an import of a key in format 7 (smime, pgp)");
	FORMAT_REFUSED(keyd_import_request_format(&out_, "bob@b.test", KEYD_FORMAT_PGP, false, key, 0, &err_),
	    "an import needs a key");
	FORMAT_REFUSED(keyd_import_request_format(&out_, "bob@b.test", KEYD_FORMAT_PGP, false, key, huge, &err_),
	    "an import request of ");
	FORMAT_REFUSED(keyd_import_request_format(&out_, "bob@b.test", KEYD_FORMAT_PGP, false, key,
	    (size_t)KEYD_REQUEST_MAX + 1, &err_), "is larger than cables-keyd takes (1 MB)");
	free(key);
}

/* request=stats: counters, then the exposition's samples as metric= lines (comments left out). */
static void
test_stats_reply(void **state)
{
	static const char text[] = "# HELP a_total A.\n# TYPE a_total counter\na_total{r=\"x\"} 3\n"
	    "# HELP h Seconds.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.250000000\nh_count 2\n";
	static const char *const refused[][2] = {
		{ "lookups=1\nmetric=a_total{r=\"x\"}\n", "line 2 is not a metric sample" },
		{ "lookups=1\nmetric=a_total 3 4\n", "line 2 is not a metric sample" },
		{ "metric=9a 1\n", "line 1 is not a metric sample" },
		{ "metric=a_total{r=\"x\" 1\n", "line 1 is not a metric sample" },
		{ "metric=a{\r} 1\n", "line 1 is not a metric sample" },
		{ "metric=a{x=\"\033]0;t\007\"} 1\n", "line 1 is not a metric sample" },
		{ "lookups=x\n", "line 1: not a number" },
		{ "lookups=\n", "line 1: no value" },
		{ "lookups\n", "line 1 is not name=value" },
		{ "error=not now\n", "cables-keyd refused the request: not now" },
	};
	struct buf out, samples;
	struct cables_err err;

	(void)state;
	buf_init(&out);
	buf_init(&samples);
	buf_appends(&out, "lookups=4\n");
	keyd_stats_metrics_format(&out, text, strlen(text));
	assert_string_equal(out.data, "lookups=4\nmetric=a_total{r=\"x\"} 3\nmetric=h_bucket{le=\"+Inf\"} 2\n"
	    "metric=h_sum 0.250000000\nmetric=h_count 2\n");
	buf_appends(&out, "\n");
	assert_int_equal(keyd_stats_reply_parse(out.data, out.len, &samples, &err), CABLES_OK);
	assert_string_equal(samples.data, "a_total{r=\"x\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.250000000\nh_count 2\n");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		buf_reset(&samples);
		assert_int_equal(keyd_stats_reply_parse(refused[i][0], strlen(refused[i][0]), &samples, &err),
		    CABLES_ERR_SYNTAX);
		if (strstr(err.msg, refused[i][1]) == NULL)
			fail_msg("'%s': '%s', not '%s'", refused[i][0], err.msg, refused[i][1]);
	}
	buf_release(&out);
	buf_release(&samples);
}

static void
test_delete_list_stats_requests(void **state)
{
	struct keyd_request req;
	struct buf out;

	buf_init(&out);
	assert_int_equal(keyd_delete_request_format(&out, "bob@b.test", "0123ABCDef", NULL), CABLES_OK);
	assert_string_equal(out.data, "request=delete\naddress=bob@b.test\nfingerprint=0123ABCDef\n\n");
	parse_formatted(&out, &req);
	assert_int_equal(req.type, KEYD_DELETE);
	assert_string_equal(req.fingerprint, "0123ABCDef");
	keyd_request_release(&req);
	buf_reset(&out);
	assert_int_equal(keyd_delete_request_format(&out, "bob@b.test", NULL, NULL), CABLES_OK);
	parse_formatted(&out, &req);
	assert_null(req.fingerprint);
	assert_int_equal(req.naddresses, 1);
	keyd_request_release(&req);
	buf_reset(&out);
	keyd_list_request_format(&out);
	parse_formatted(&out, &req);
	assert_int_equal(req.type, KEYD_LIST);
	keyd_request_release(&req);
	buf_reset(&out);
	keyd_stats_request_format(&out);
	parse_formatted(&out, &req);
	assert_int_equal(req.type, KEYD_STATS);
	keyd_request_release(&req);
	buf_release(&out);
	FORMAT_REFUSED(keyd_delete_request_format(&out_, "bob@b.test", "0123", &err_), "not a hex prefix of 8 to 64 digits");
	FORMAT_REFUSED(keyd_delete_request_format(&out_, "bob@b.test", "0123456g", &err_), "not a hex prefix");
	FORMAT_REFUSED(keyd_delete_request_format(&out_, "bob@b.test", "01234567\nrequest=list", &err_), "not a hex prefix");
	FORMAT_REFUSED(keyd_delete_request_format(&out_, "bob@b.test",
	    "00000000000000000000000000000000000000000000000000000000000000000", &err_), "not a hex prefix");
	FORMAT_REFUSED(keyd_delete_request_format(&out_, "bob", NULL, &err_), "'bob' is not an email address");
}

/* The import reply: what keyd formats parses back; anything else is refused, never read best-effort. */
static void
test_import_reply(void **state)
{
	struct keyd_import_reply r = { "bob@b.test", KEYD_FORMAT_PGP, "0123abcdef", 1830000000 }, back;
	struct buf out;

	buf_init(&out);
	keyd_import_reply_format(&out, &r);
	assert_string_equal(out.data, "stored=bob@b.test format=pgp fingerprint=0123abcdef expires=1830000000\n");
	assert_int_equal(keyd_import_reply_parse(out.data, out.len, &back, NULL), CABLES_OK);
	assert_string_equal(back.address, "bob@b.test");
	assert_int_equal(back.format, KEYD_FORMAT_PGP);
	assert_string_equal(back.fingerprint, "0123abcdef");
	assert_int_equal(back.expires, 1830000000);
	buf_appends(&out, "\n");	/* with the empty line, as keyd_call() reads it */
	assert_int_equal(keyd_import_reply_parse(out.data, out.len, &back, NULL), CABLES_OK);
	buf_release(&out);
}

static void
import_reply_refused(const char *text, const char *reason)
{
	struct keyd_import_reply r;
	struct cables_err err;

	assert_int_equal(keyd_import_reply_parse(text, strlen(text), &r, &err), CABLES_ERR_SYNTAX);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': expected '%s', got '%s'", text, reason, err.msg);
}

static void
test_bad_import_replies_refused(void **state)
{
	static const char shape[] = "the reply to an import is not \"stored=ADDRESS format=F fingerprint=FPR expires=T\"";
	static const char lines[] = "the reply to an import is not one line";

	import_reply_refused("error=not usable: expired (force=yes stores it anyway)\n\n",
	    "cables-keyd refused the request: not usable: expired (force=yes stores it anyway)");
	import_reply_refused("", lines);
	import_reply_refused("\n\n", lines);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=00 expires=1\nstored=x@b.test format=pgp "
	    "fingerprint=00 expires=1\n", lines);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=00 expires=1\n\n\n", lines);
	import_reply_refused("deleted=1\n", shape);
	import_reply_refused("stored=bob@b.test\n", shape);
	import_reply_refused("stored= format=pgp fingerprint=00 expires=1\n", shape);
	import_reply_refused("stored=bob format=pgp fingerprint=00 expires=1\n", shape);
	import_reply_refused("stored=bob@b.test format=x509 fingerprint=00 expires=1\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=zz expires=1\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint= expires=1\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=00 expires=1x\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=00 expires=\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint=00 expires=1 extra=1\n", shape);
	import_reply_refused("stored=bob@b.test fingerprint=00 format=pgp expires=1\n", shape);
	import_reply_refused("stored=bob@b.test format=pgp fingerprint="
	    "00000000000000000000000000000000000000000000000000000000000000000 expires=1\n", shape);
}

static void
delete_reply_refused(const char *text, const char *reason)
{
	struct cables_err err;
	size_t n = 7;

	assert_int_equal(keyd_delete_reply_parse(text, strlen(text), &n, &err), CABLES_ERR_SYNTAX);
	assert_int_equal(n, 0);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': expected '%s', got '%s'", text, reason, err.msg);
}

static void
test_delete_reply(void **state)
{
	static const char shape[] = "the reply to a delete is not \"deleted=N\"";
	struct buf out;
	size_t n;

	buf_init(&out);
	keyd_delete_reply_format(&out, 3);
	assert_string_equal(out.data, "deleted=3\n");
	assert_int_equal(keyd_delete_reply_parse(out.data, out.len, &n, NULL), CABLES_OK);
	assert_int_equal(n, 3);
	assert_int_equal(keyd_delete_reply_parse("deleted=0\n\n", 11, &n, NULL), CABLES_OK);
	assert_int_equal(n, 0);
	buf_release(&out);
	delete_reply_refused("error=not an address\n\n", "cables-keyd refused the request: not an address");
	delete_reply_refused("deleted=\n", shape);
	delete_reply_refused("deleted=-1\n", shape);
	delete_reply_refused("deleted=+1\n", shape);
	delete_reply_refused("deleted= 1\n", shape);
	delete_reply_refused("deleted=1 \n", shape);
	delete_reply_refused("deleted=0x10\n", shape);
	delete_reply_refused("deleted=99999999999999999999999\n", shape);
	delete_reply_refused("removed=1\n", shape);
	delete_reply_refused("deleted=1\ndeleted=2\n", "the reply to a delete is not one line");
	delete_reply_refused("", "the reply to a delete is not one line");
}

/* keyd's error= lines: one line whatever the reason holds. */
/* A check is a lookup's addresses under another request word; what a client formats, keyd reads. */
static void
test_check_request(void **state)
{
	const char *addrs[] = { "bob@b.test", "dave@dead.test" };
	struct keyd_request req;
	struct cables_err err;
	struct buf out;

	buf_init(&out);
	assert_int_equal(keyd_check_request_format(&out, addrs, 2, &err), CABLES_OK);
	assert_string_equal(out.data, "request=check\naddress=bob@b.test\naddress=dave@dead.test\n\n");
	assert_int_equal(keyd_request_parse(out.data, out.len - 1, &req, &err), CABLES_OK);
	assert_int_equal(req.type, KEYD_CHECK);
	assert_int_equal(req.naddresses, 2);
	keyd_request_release(&req);
	buf_reset(&out);
	assert_int_equal(keyd_check_request_format(&out, addrs, 0, &err), CABLES_ERR_ARG);
	assert_non_null(strstr(err.msg, "a check needs at least one address"));
	assert_int_equal(out.len, 0);
	buf_release(&out);
	refused("request=check\n", strlen("request=check\n"), "check without an address= line");
	refused("request=check\naddress=bob@b.test\nforce=yes\n", strlen("request=check\naddress=bob@b.test\nforce=yes\n"),
	    "a check takes address= lines only");
	parses("request=check\naddress=bob@b.test\n", KEYD_CHECK, 1);
}

/* What keyd formats for a check, the milter parses: state, the seconds left, why. */
static void
test_check_reply_round_trip(void **state)
{
	struct keyd_check c[3] = {
		{ "bob@b.test", KEYD_CHECK_CACHED, 0, "" },
		{ "carol@c.test", KEYD_CHECK_LOOKUP, 0, "" },
		{ "dave@dead.test", KEYD_CHECK_UNRESPONSIVE, 420, "2 lookups at dead.test got no answer:\nSMIMEA" },
	};
	struct keyd_check_reply r;
	struct buf out;

	buf_init(&out);
	for (size_t i = 0; i < 3; i++)
		keyd_check_format(&out, &c[i]);
	buf_appends(&out, "\n");
	assert_string_equal(out.data, "check=bob@b.test cached\ncheck=carol@c.test lookup\n"
	    "check=dave@dead.test unresponsive retry=420 reason=2 lookups at dead.test got no answer:?SMIMEA\n\n");
	assert_int_equal(keyd_check_reply_parse(out.data, out.len, &r, NULL), CABLES_OK);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.checks[0].state, KEYD_CHECK_CACHED);
	assert_int_equal(r.checks[1].state, KEYD_CHECK_LOOKUP);
	assert_string_equal(r.checks[2].address, "dave@dead.test");
	assert_int_equal(r.checks[2].state, KEYD_CHECK_UNRESPONSIVE);
	assert_int_equal(r.checks[2].retry, 420);
	assert_string_equal(r.checks[2].reason, "2 lookups at dead.test got no answer:?SMIMEA");
	keyd_check_reply_release(&r);
	buf_release(&out);
}

static void
check_reply_refused(const char *text, const char *reason)
{
	struct keyd_check_reply r;
	struct cables_err err;

	assert_int_equal(keyd_check_reply_parse(text, strlen(text), &r, &err), CABLES_ERR_SYNTAX);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': expected '%s', got '%s'", text, reason, err.msg);
	keyd_check_reply_release(&r);
}

static void
test_bad_check_replies_refused(void **state)
{
	static const struct { const char *text, *reason; } cases[] = {
		{ "error=line 1: unknown request 'check'\n\n", "cables-keyd refused the request: line 1" },
		{ "check=bob@b.test maybe\n", "reply line 1 is not a check= line" },
		{ "check=bob@b.test\n", "reply line 1 is not" },
		{ "check= cached\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=0\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=-5\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=12x\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=99999999999999999999999\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive because\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive reason=\n", "reply line 1 is not" },
		{ "check=bob@b.test cached\nresult=bob@b.test found\n", "reply line 2 is not" },
		{ "result=bob@b.test found\n", "reply line 1 is not" },
		{ "check=bob@b.test unresponsive retry=5 reason=a\001b\n", "reply line 1 is not" },
		{ "check=bob\033@b.test cached\n", "reply line 1 is not" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_reply_refused(cases[i].text, cases[i].reason);
}

static void
test_error_format(void **state)
{
	struct keyd_lookup_reply r;
	struct cables_err err;
	struct buf out;

	buf_init(&out);
	keyd_error_format(&out, "data: %s", "bad\nrequest=stats");
	assert_string_equal(out.data, "error=data: bad?request=stats\n");
	assert_int_equal(keyd_lookup_reply_parse(out.data, out.len, &r, &err), CABLES_ERR_SYNTAX);
	assert_string_equal(err.msg, "cables-keyd refused the request: data: bad?request=stats");
	keyd_lookup_reply_release(&r);
	buf_release(&out);
}

/* encrypting= (No downgrade): formatted and parsed back; old replies parse as before; misuse refused. */
static void
test_encrypting_results(void **state)
{
	static const char *const bad[] = {
		"result=a@b.test none encrypting=remembered reason=x",		/* remembered without since= */
		"result=a@b.test none encrypting=remembered since=x",
		"result=a@b.test none encrypting=remembered since=-1",
		"result=a@b.test none encrypting=no",				/* "no" is not a wire word */
		"result=a@b.test none encrypting=maybe",
		"result=a@b.test found encrypting=published",			/* only results without keys */
		"result=a@b.test none encrypting=published since=5",
	};
	struct keyd_lookup_reply r;
	struct cables_err err;
	struct buf out;

	(void)state;
	buf_init(&out);
	keyd_result_encrypting_format(&out, "a@b.test", KEYD_OUTCOME_NONE, KEYD_ENCRYPTING_REMEMBERED, 1780000000,
	    "no such record");
	keyd_result_encrypting_format(&out, "c@d.test", KEYD_OUTCOME_TEMPFAIL, KEYD_ENCRYPTING_PUBLISHED, 0, NULL);
	keyd_result_encrypting_format(&out, "e@f.test", KEYD_OUTCOME_NONE, KEYD_ENCRYPTING_NO, 0, "x");
	assert_string_equal(out.data, "result=a@b.test none encrypting=remembered since=1780000000 reason=no such record\n"
	    "result=c@d.test tempfail encrypting=published\nresult=e@f.test none reason=x\n");
	assert_int_equal(keyd_lookup_reply_parse(out.data, out.len, &r, &err), CABLES_OK);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.results[0].encrypting, KEYD_ENCRYPTING_REMEMBERED);
	assert_int_equal(r.results[0].since, 1780000000);
	assert_string_equal(r.results[0].reason, "no such record");
	assert_int_equal(r.results[1].outcome, KEYD_OUTCOME_TEMPFAIL);
	assert_int_equal(r.results[1].encrypting, KEYD_ENCRYPTING_PUBLISHED);
	assert_string_equal(r.results[1].reason, "");
	assert_int_equal(r.results[2].encrypting, KEYD_ENCRYPTING_NO);
	keyd_lookup_reply_release(&r);
	buf_release(&out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (keyd_lookup_reply_parse(bad[i], strlen(bad[i]), &r, &err) != CABLES_ERR_SYNTAX)
			fail_msg("'%s' was taken", bad[i]);
		keyd_lookup_reply_release(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_import_fields),
		cmocka_unit_test(test_bad_requests_say_why),
		cmocka_unit_test(test_a_list_fits_one_request),
		cmocka_unit_test(test_sanitize_removes_control_characters),
		cmocka_unit_test(test_names_parse_back),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_bad_replies_refused),
		cmocka_unit_test(test_list_reply),
		cmocka_unit_test(test_lookup_request_round_trip),
		cmocka_unit_test(test_lookup_request_refused),
		cmocka_unit_test(test_import_request_round_trip),
		cmocka_unit_test(test_import_request_refused),
		cmocka_unit_test(test_delete_list_stats_requests),
		cmocka_unit_test(test_stats_reply),
		cmocka_unit_test(test_import_reply),
		cmocka_unit_test(test_bad_import_replies_refused),
		cmocka_unit_test(test_delete_reply),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_check_request),
		cmocka_unit_test(test_check_reply_round_trip),
		cmocka_unit_test(test_bad_check_replies_refused),
		cmocka_unit_test(test_encrypting_results),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
