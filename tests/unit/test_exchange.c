/* test_exchange - the key-exchange protocol (keyd/exchange.c): requests, signed answers and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "addr.h"
#include "exchange.h"
#include "helpers.h"
#include "smime.h"
#include "ratelimit.h"
#include "wkd.h"

#define NOW 1800000000L

static EVP_PKEY *key, *other;
static char fpr[1][65], other_fpr[1][65];

static int
setup(void **state)
{
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	x_key_fingerprint(key, fpr[0]);
	x_key_fingerprint(other, other_fpr[0]);
	return 0;
}

static int
teardown(void **state)
{
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return 0;
}

/* A request for bob and carol at b.test, and b's answer (bob has one key) made with k at time t. */
static void
exchange(EVP_PKEY *k, time_t t, struct x_request *req, struct buf *answer)
{
	static const char *const addrs[] = { "bob@b.test", "carol@b.test" };
	static uint8_t cert[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
	struct x_key bobs = { "smime", cert, sizeof(cert), 1830000000 };
	struct x_result res[2] = { { (char *)"bob@b.test", &bobs, 1, NULL, 0 }, { (char *)"carol@b.test", NULL, 0, NULL, 0 } };
	struct x_answer a = { res, 2 };
	struct buf body;

	x_request_make("B.test", addrs, 2, req, &body);
	buf_release(&body);
	struct x_signer signer = x_signer_local(k);

	assert_int_equal(x_answer_make(&signer, req, &a, t, answer, NULL), CABLES_OK);
}

static void
test_a_signed_answer_verifies(void **state)
{
	struct x_request req;
	struct x_answer got;
	struct buf answer;

	exchange(key, NOW, &req, &answer);
	assert_string_equal(req.domain, "b.test");
	assert_int_equal(strlen(req.nonce), X_NONCE_LEN);
	assert_int_equal(x_answer_verify(answer.data, answer.len, &req, (const char (*)[65])fpr, 1, NOW + 10, &got, NULL),
	    CABLES_OK);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.results[0].address, "bob@b.test");
	assert_int_equal(got.results[0].n, 1);
	assert_string_equal(got.results[0].keys[0].format, "smime");
	assert_int_equal(got.results[0].keys[0].len, 5);
	assert_int_equal(got.results[0].keys[0].not_after, 1830000000);
	assert_int_equal(got.results[1].n, 0);
	x_answer_release(&got);
	x_request_release(&req);
	buf_release(&answer);
}

/* Verify text against req with fpr at NOW; the status, and the reason must contain why. */
static void
refused(const char *text, const struct x_request *req, const char (*fprs)[65], time_t now, const char *why)
{
	struct x_answer got;
	struct cables_err err;

	assert_int_not_equal(x_answer_verify(text, strlen(text), req, fprs, 1, now, &got, &err), CABLES_OK);
	if (strstr(err.msg, why) == NULL)
		fail_msg("reason '%s' does not say '%s'", err.msg, why);
	assert_int_equal(got.n, 0);
}

/* answer with its payload's JSON changed by replacing from with to (the signature left as it was). */
static char *
altered(const struct buf *answer, const char *from, const char *to)
{
	json_t *o = json_loadb(answer->data, answer->len, 0, NULL), *p = json_object_get(o, "payload");
	unsigned char dec[4096], enc[6000];
	int n = EVP_DecodeBlock(dec, (const unsigned char *)json_string_value(p), (int)json_string_length(p));
	char *text, *at, *out;

	dec[n] = '\0';
	text = xstrdup((char *)dec);
	at = strstr(text, from);
	assert_non_null(at);
	out = malloc(strlen(text) + strlen(to) + 1);
	sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	EVP_EncodeBlock(enc, (unsigned char *)out, (int)strlen(out));
	json_object_set_new(o, "payload", json_string((char *)enc));
	free(text);
	free(out);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

static void
test_what_is_refused(void **state)
{
	struct x_request req, req2, req3;
	struct buf answer, by_other, stale;
	char *tampered;

	exchange(key, NOW, &req, &answer);
	exchange(other, NOW, &req2, &by_other);
	exchange(key, NOW - 3600, &req3, &stale);
	/* Signed by a key that is not the domain's: refused before anything else is looked at. */
	refused(by_other.data, &req2, (const char (*)[65])fpr, NOW, "signed by a key that is not b.test's");
	refused(answer.data, &req, (const char (*)[65])other_fpr, NOW, "signed by a key that is not b.test's");
	/* A genuine answer to another request (its nonce): a replay. */
	refused(answer.data, &req2, (const char (*)[65])fpr, NOW, "nonce");
	/* Too old, or from the future. */
	refused(stale.data, &req3, (const char (*)[65])fpr, NOW, "issued more than 300 s from now");
	refused(answer.data, &req, (const char (*)[65])fpr, NOW - 400, "issued more than 300 s from now");
	/* Any change to the payload breaks the signature. */
	tampered = altered(&answer, "1830000000", "1830000001");
	refused(tampered, &req, (const char (*)[65])fpr, NOW, "the signature over the answer does not verify");
	free(tampered);
	/* Not JSON, not signed, truncated. */
	refused("not json", &req, (const char (*)[65])fpr, NOW, "not JSON");
	refused("{\"payload\":\"e30=\"}", &req, (const char (*)[65])fpr, NOW, "not a signed payload");
	answer.data[answer.len / 2] = '\0';
	refused(answer.data, &req, (const char (*)[65])fpr, NOW, "not JSON");
	x_request_release(&req);
	x_request_release(&req2);
	x_request_release(&req3);
	buf_release(&answer);
	buf_release(&by_other);
	buf_release(&stale);
}

static void
test_answers_only_for_what_was_asked(void **state)
{
	static const char *const just_bob[] = { "bob@b.test" };
	struct x_request req, small;
	struct buf answer, body;
	struct x_answer got;
	struct cables_err err;

	/* b answers about carol too, but the request was for bob only. */
	exchange(key, NOW, &req, &answer);
	x_request_make("b.test", just_bob, 1, &small, &body);
	strcpy(small.nonce, req.nonce);
	assert_int_not_equal(x_answer_verify(answer.data, answer.len, &small, (const char (*)[65])fpr, 1, NOW, &got, &err),
	    CABLES_OK);
	assert_non_null(strstr(err.msg, "an address not asked about"));
	/* ...and an answer for another domain, with that domain's key. */
	strcpy(small.domain, "c.test");
	assert_int_not_equal(x_answer_verify(answer.data, answer.len, &small, (const char (*)[65])fpr, 1, NOW, &got, &err),
	    CABLES_OK);
	assert_non_null(strstr(err.msg, "another domain"));
	x_request_release(&req);
	x_request_release(&small);
	buf_release(&answer);
	buf_release(&body);
}

#define BAD(body, reason) bad_request(body, reason)

static void
bad_request(const char *body, const char *reason)
{
	struct x_request req;
	struct cables_err err;

	assert_int_not_equal(x_request_parse(body, strlen(body), &req, &err), CABLES_OK);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("'%s': reason '%s' does not say '%s'", body, err.msg, reason);
}

static void
test_requests(void **state)
{
	static const char good[] = "{\"v\":1,\"domain\":\"B.Test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\","
	    "\"addresses\":[\"bob@b.test\",\"Carol@B.TEST\"],\"future\":true}";
	struct x_request req;
	struct buf many;

	assert_int_equal(x_request_parse(good, sizeof(good) - 1, &req, NULL), CABLES_OK);
	assert_string_equal(req.domain, "b.test");
	assert_int_equal(req.n, 2);
	assert_string_equal(req.addresses[1], "Carol@B.TEST");
	x_request_release(&req);
	BAD("", "not JSON");
	BAD("[]", "not a version 1 request");
	BAD("{\"v\":2}", "not a version 1 request");
	BAD("{\"v\":1,\"v\":1}", "not JSON");	/* duplicate keys */
	BAD("{\"v\":1,\"domain\":\"b..test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"addresses\":[\"a@b.test\"]}", "\"domain\"");
	BAD("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"short\",\"addresses\":[\"a@b.test\"]}", "\"nonce\"");
	BAD("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAA+/\",\"addresses\":[\"a@b.test\"]}", "\"nonce\"");
	BAD("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"addresses\":[]}", "\"addresses\"");
	BAD("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"addresses\":[\"a@c.test\"]}",
	    "address 1 is not an address in b.test");
	BAD("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"addresses\":[7]}", "address 1");
	buf_init(&many);
	buf_appends(&many, "{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"addresses\":[");
	for (int i = 0; i <= X_ADDRESSES_MAX; i++)
		buf_printf(&many, "%s\"u%d@b.test\"", i > 0 ? "," : "", i);
	buf_appends(&many, "]}");
	BAD(many.data, "1 to 64 addresses");
	buf_release(&many);
}

/* A signed request as a.test sends it, with one field of its outer object replaced by value (NULL: as made). */
static void
signed_request(const char *field, const char *value, struct x_request *made, struct buf *out)
{
	static const char *const addrs[] = { "bob@b.test", "carol@b.test" };
	json_t *o;
	char *text;

	struct x_signer signer = x_signer_local(key);

	assert_int_equal(x_request_make_signed("b.test", addrs, 2, "A.Test", &signer, NOW, made, out, NULL), CABLES_OK);
	if (field == NULL)
		return;
	o = json_loadb(out->data, out->len, 0, NULL);
	assert_non_null(o);
	json_object_set_new(o, field, json_string(value));
	text = json_dumps(o, JSON_COMPACT);
	buf_release(out);
	buf_init(out);
	buf_appends(out, text);
	free(text);
	json_decref(o);
}

static void
test_signed_requests(void **state)
{
	struct x_request made, req, other_made;
	struct buf body, other_body;
	struct cables_err err;

	/* As made: parsed as signed by a.test's key, checked against a.test's fingerprints, in time. */
	signed_request(NULL, NULL, &made, &body);
	assert_int_equal(x_request_parse(body.data, body.len, &req, &err), CABLES_OK);
	assert_true(req.is_signed);
	assert_string_equal(req.from, "a.test");
	assert_string_equal(req.domain, "b.test");
	assert_string_equal(req.nonce, made.nonce);
	assert_string_equal(req.key_fpr, fpr[0]);
	assert_int_equal(req.n, 2);
	assert_string_equal(req.addresses[1], "carol@b.test");
	assert_int_equal(x_request_check_signer(&req, (const char (*)[65])fpr, 1, NOW + 10, NULL), CABLES_OK);
	/* Another domain's key, no key known, or too far from our clock: not the asking domain's request. */
	assert_int_not_equal(x_request_check_signer(&req, (const char (*)[65])other_fpr, 1, NOW, &err), CABLES_OK);
	assert_non_null(strstr(err.msg, "not a.test's"));
	assert_int_not_equal(x_request_check_signer(&req, NULL, 0, NOW, NULL), CABLES_OK);
	assert_int_not_equal(x_request_check_signer(&req, (const char (*)[65])fpr, 1, NOW + X_SKEW + 1, &err), CABLES_OK);
	assert_non_null(strstr(err.msg, "issued"));
	x_request_release(&req);

	x_request_release(&made);
	buf_release(&body);

	/* The key swapped for another's, the request tampered with, a signature from elsewhere: refused. */
	signed_request(NULL, NULL, &other_made, &other_body);
	x_request_release(&other_made);
	{
		json_t *ob = json_loadb(other_body.data, other_body.len, 0, NULL);
		char *alt;
		uint8_t pub[32];
		size_t publen = sizeof(pub);
		char b64[64];

		EVP_PKEY_get_raw_public_key(other, pub, &publen);
		EVP_EncodeBlock((unsigned char *)b64, pub, (int)publen);
		signed_request("key", b64, &made, &body);
		assert_int_not_equal(x_request_parse(body.data, body.len, &req, &err), CABLES_OK);
		assert_non_null(strstr(err.msg, "signature does not verify"));
		x_request_release(&made);
		buf_release(&body);
		/* Another signed request's body under this one's signature, and the reverse. */
		alt = xstrdup(json_string_value(json_object_get(ob, "request")));
		signed_request("request", alt, &made, &body);
		assert_int_not_equal(x_request_parse(body.data, body.len, &req, &err), CABLES_OK);
		assert_non_null(strstr(err.msg, "signature does not verify"));
		x_request_release(&made);
		buf_release(&body);
		signed_request("signature", json_string_value(json_object_get(ob, "signature")), &made, &body);
		assert_int_not_equal(x_request_parse(body.data, body.len, &req, NULL), CABLES_OK);
		x_request_release(&made);
		buf_release(&body);
		free(alt);
		json_decref(ob);
	}
	buf_release(&other_body);
	BAD("{\"request\":\"eyJ2IjoxfQ==\",\"key\":\"AAAA\",\"signature\":\"AAAA\"}", "not a signed request");
	BAD("{\"request\":7}", "not a signed request");

	/* An unsigned request says so, and check_signer refuses it. */
	{
		static const char anon[] = "{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\","
		    "\"addresses\":[\"bob@b.test\"],\"from\":\"a.test\",\"issued\":1800000000}";

		assert_int_equal(x_request_parse(anon, sizeof(anon) - 1, &req, NULL), CABLES_OK);
		assert_false(req.is_signed);
		assert_string_equal(req.from, "");	/* "from" outside a signature means nothing */
		assert_int_not_equal(x_request_check_signer(&req, (const char (*)[65])fpr, 1, NOW, NULL), CABLES_OK);
		x_request_release(&req);
	}
}

static void
test_domain_key_and_txt(void **state)
{
	char *dir = test_tempdir(), path[512], txt[128], got[65];
	EVP_PKEY *k;
	struct cables_err err;

	snprintf(path, sizeof(path), "%s/x.key", dir);
	assert_int_equal(x_key_generate(path, NULL), CABLES_OK);
	assert_int_not_equal(x_key_generate(path, &err), CABLES_OK);	/* never overwritten */
	k = x_key_load(path, NULL);
	assert_non_null(k);
	x_key_txt(k, txt, sizeof(txt));
	assert_true(x_txt_fingerprint(txt, got));
	x_key_fingerprint(k, path);
	assert_string_equal(got, path);
	/* The presentation form of a TXT record: quoted, maybe split. */
	snprintf(path, sizeof(path), "\"v=cables1; k=ed25519; \" \"fp=%s\"", got);
	assert_true(x_txt_fingerprint(path, got));
	assert_false(x_txt_fingerprint("\"v=spf1 -all\"", got));
	assert_false(x_txt_fingerprint("v=cables1; k=rsa; fp=00", got));
	EVP_PKEY_free(k);
	test_rmdir(dir);
	free(dir);
}

static void
test_wkd_hash(void **state)
{
	char h[33];

	/* The example of draft-koch-openpgp-webkey-service: Joe.Doe@Example.ORG. */
	wkd_hash("Joe.Doe", h);
	assert_string_equal(h, "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
	wkd_hash("joe.doe", h);
	assert_string_equal(h, "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
}

/*
 * Rate limits: a bucket per client, never shared.  A table of 8 slots
 * (the fewest; every key probes all of them) makes every key collide.
 */
static void
test_rate_limit_buckets_are_per_client(void **state)
{
	struct ratelimit *rl = ratelimit_new(8, 1, 3);	/* a token a second, bursts of 3 */
	char name[32];

	/* Eight clients, each with its own burst of 3. */
	for (int c = 0; c < 8; c++) {
		snprintf(name, sizeof(name), "192.0.2.%d", c);
		for (int i = 0; i < 3; i++)
			assert_int_equal(ratelimit_take(rl, name, 100), RATELIMIT_OK);
		assert_int_equal(ratelimit_take(rl, name, 100), RATELIMIT_LIMITED);
	}
	/* A ninth finds no slot: refused, not merged with another client's budget. */
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 100), RATELIMIT_FULL);
	/* One second later each of the eight has exactly one token again: nobody took another's. */
	for (int c = 0; c < 8; c++) {
		snprintf(name, sizeof(name), "192.0.2.%d", c);
		assert_int_equal(ratelimit_take(rl, name, 101), RATELIMIT_OK);
		assert_int_equal(ratelimit_take(rl, name, 101), RATELIMIT_LIMITED);
	}
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 101), RATELIMIT_FULL);
	/* Once a client has been idle long enough to refill completely its slot may go to the newcomer... */
	for (int c = 1; c < 8; c++) {
		snprintf(name, sizeof(name), "192.0.2.%d", c);
		assert_int_equal(ratelimit_take(rl, name, 103), RATELIMIT_OK);
	}
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 104.5), RATELIMIT_OK);
	/* ...who starts with its own burst, and the evicted client comes back to a full one, as it would have had. */
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 104.5), RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 104.5), RATELIMIT_OK);
	assert_int_equal(ratelimit_take(rl, "198.51.100.1", 104.5), RATELIMIT_LIMITED);
	ratelimit_free(rl);

	/* Rate 0: no limit. */
	rl = ratelimit_new(8, 0, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ratelimit_take(rl, "192.0.2.1", 0), RATELIMIT_OK);
	ratelimit_free(rl);
	assert_string_equal(ratelimit_verdict_name(RATELIMIT_FULL), "full");
}


/* ---- epoch keys (doc/key-exchange.md, "Forward secrecy: epoch keys") ---- */

/* EK: one well-formed epoch key entry (the data need not be a certificate for the list's checks). */
#define EK "{\"format\":\"smime\",\"data\":\"AAAA\",\"not_after\":1}"

/* The answer wrapper of payload (JSON text), signed with k as a domain would. */
static void
sign_payload(EVP_PKEY *k, const char *payload, struct buf *out)
{
	uint8_t digest[X_DIGEST_LEN], msg[X_SIGN_MSG_MAX], sig[X_SIG_LEN], pub[X_PUB_LEN];
	size_t mlen, siglen = sizeof(sig), publen = sizeof(pub);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char b64p[8192], b64k[64], b64s[128];
	char *text;

	assert_true(x_sign_digest(X_SIGN_ANSWER, payload, strlen(payload), digest));
	mlen = x_sign_message(X_SIGN_ANSWER, digest, msg);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, mlen), 1);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &publen), 1);
	assert_true(strlen(payload) < 6000);
	EVP_EncodeBlock(b64p, (const unsigned char *)payload, (int)strlen(payload));
	EVP_EncodeBlock(b64k, pub, (int)publen);
	EVP_EncodeBlock(b64s, sig, (int)siglen);
	text = xasprintf("{\"payload\":\"%s\",\"key\":\"%s\",\"signature\":\"%s\"}", b64p, b64k, b64s);
	buf_init(out);
	buf_appends(out, text);
	free(text);
}

#define DAY 86400L

/* DER of cert as an x_key (data malloc'd). */
static struct x_key
cert_key(X509 *cert)
{
	struct x_key k;
	long long nb;

	memset(&k, 0, sizeof(k));
	strcpy(k.format, "smime");
	k.data = smime_cert_to_der(cert, &k.len);
	smime_cert_validity(cert, &nb, &k.not_after);
	return k;
}

/* An epoch certificate for addr issued by parent, valid [nb, na]. */
static X509 *
epoch_cert(X509 *parent, EVP_PKEY *pkey, const char *addr, long long nb, long long na)
{
	X509 *c;
	EVP_PKEY *k;

	assert_int_equal(smime_epoch_issue(parent, pkey, addr, nb, na, &c, &k, NULL), CABLES_OK);
	EVP_PKEY_free(k);
	return c;
}

static void
test_an_epoch_key_travels_in_the_signed_answer(void **state)
{
	static const char *const addrs[] = { "bob@b.test" };
	X509 *lt, *ep;
	EVP_PKEY *ltk;
	struct x_key keys[1], epochs[1];
	struct x_result res[1];
	struct x_answer a, got;
	struct x_request req;
	struct buf body, answer;
	struct x_signer signer = x_signer_local(key);
	struct cables_err err = { "" };

	assert_int_equal(smime_generate("bob@b.test", SMIME_ALGO_P256, 365, NOW, &lt, &ltk, NULL), CABLES_OK);
	ep = epoch_cert(lt, ltk, "bob@b.test", NOW, NOW + 8 * DAY);
	keys[0] = cert_key(lt);
	epochs[0] = cert_key(ep);
	res[0] = (struct x_result){ (char *)"bob@b.test", keys, 1, epochs, 1 };
	a = (struct x_answer){ res, 1 };
	x_request_make("b.test", addrs, 1, &req, &body);
	buf_release(&body);
	assert_int_equal(x_answer_make(&signer, &req, &a, NOW, &answer, NULL), CABLES_OK);
	if (x_answer_verify(answer.data, answer.len, &req, (const char (*)[65])fpr, 1, NOW, &got, &err) != CABLES_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.results[0].n, 1);
	assert_int_equal(got.results[0].nepochs, 1);
	assert_int_equal(got.results[0].epochs[0].len, epochs[0].len);
	assert_memory_equal(got.results[0].epochs[0].data, epochs[0].data, epochs[0].len);
	assert_int_equal(got.results[0].epochs[0].not_after, NOW + 8 * DAY);
	{
		struct addr_opts ao = { 0 };

		if (x_epoch_check(&got.results[0], &got.results[0].epochs[0], &ao, NOW + 60, NULL, &err) != CABLES_OK)
			fail_msg("%s", err.msg);
	}
	x_answer_release(&got);
	buf_release(&answer);
	x_request_release(&req);
	free(keys[0].data);
	free(epochs[0].data);
	X509_free(lt);
	X509_free(ep);
	EVP_PKEY_free(ltk);
}

static void
test_bad_epoch_keys_are_refused(void **state)
{
	X509 *lt, *lt2, *eves, *ep, *foreign, *longlived, *carols, *signing;
	EVP_PKEY *ltk, *lt2k, *evek, *sk;
	struct addr_opts ao = { 0 };
	struct x_key keys[1];
	struct x_key good, tampered, expired_na, lying, foreign_k, long_k, carol_k, signing_k, pgp;

	assert_int_equal(smime_generate("bob@b.test", SMIME_ALGO_P256, 365, NOW, &lt, &ltk, NULL), CABLES_OK);
	/* Another certificate for bob, not in the answer: an attacker's, say, with ExchangeKey but not bob's key. */
	assert_int_equal(smime_generate("bob@b.test", SMIME_ALGO_P256, 365, NOW, &lt2, &lt2k, NULL), CABLES_OK);
	assert_int_equal(smime_generate("eve@e.test", SMIME_ALGO_P256, 365, NOW, &eves, &evek, NULL), CABLES_OK);
	ep = epoch_cert(lt, ltk, "bob@b.test", NOW, NOW + 8 * DAY);
	foreign = epoch_cert(lt2, lt2k, "bob@b.test", NOW, NOW + 8 * DAY);
	longlived = epoch_cert(lt, ltk, "bob@b.test", NOW, NOW + 365 * DAY);
	carols = epoch_cert(lt, ltk, "carol@b.test", NOW, NOW + 8 * DAY);
	/* A certificate bob's key issued that may sign: no epoch key. */
	assert_int_equal(smime_generate("bob@b.test", SMIME_ALGO_P256, 8, NOW, &signing, &sk, NULL), CABLES_OK);
	X509_set_issuer_name(signing, X509_get_subject_name(lt));
	X509_sign(signing, ltk, EVP_sha256());
	keys[0] = cert_key(lt);
	good = cert_key(ep);
	tampered = cert_key(ep);
	tampered.data[tampered.len - 10] ^= 0x01;	/* inside the signature */
	expired_na = cert_key(ep);
	lying = cert_key(ep);
	lying.not_after += 30 * DAY;
	foreign_k = cert_key(foreign);
	long_k = cert_key(longlived);
	carol_k = cert_key(carols);
	signing_k = cert_key(signing);
	pgp = cert_key(ep);
	strcpy(pgp.format, "pgp");
	{
		struct x_result res = { (char *)"bob@b.test", keys, 1, NULL, 0 };
		struct x_result none = { (char *)"bob@b.test", NULL, 0, NULL, 0 };
		const struct {
			const char *what;
			const struct x_result *res;
			const struct x_key *k;
			time_t now;
			const char *reason;	/* NULL: accepted */
		} cases[] = {
			{ "good", &res, &good, NOW + 60, NULL },
			{ "tampered", &res, &tampered, NOW + 60, "not issued by a long-term certificate" },
			{ "expired", &res, &expired_na, NOW + 8 * DAY + 1, "the epoch certificate: " },
			{ "not yet valid", &res, &good, NOW - DAY, "the epoch certificate: " },
			{ "its expiry misstated", &res, &lying, NOW + 60, "not at" },
			{ "foreign-signed", &res, &foreign_k, NOW + 60, "not issued by a long-term certificate" },
			{ "no long-term key in the answer", &none, &good, NOW + 60, "not issued by a long-term certificate" },
			{ "valid for a year", &res, &long_k, NOW + 60, "no short-lived key" },
			{ "for another address", &res, &carol_k, NOW + 60, "the epoch certificate: " },
			{ "may sign", &res, &signing_k, NOW + 60, "key agreement only" },
			{ "a certificate called OpenPGP", &res, &pgp, NOW + 60, "without an OpenPGP key" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct cables_err err = { "" };
			cables_status st = x_epoch_check(cases[i].res, cases[i].k, &ao, cases[i].now, NULL, &err);

			if (cases[i].reason == NULL ? st != CABLES_OK :
			    st == CABLES_OK || strstr(err.msg, cases[i].reason) == NULL)
				fail_msg("%s: status %d: %s", cases[i].what, st, err.msg);
		}
	}
	free(keys[0].data);
	free(good.data);
	free(tampered.data);
	free(expired_na.data);
	free(lying.data);
	free(foreign_k.data);
	free(long_k.data);
	free(carol_k.data);
	free(signing_k.data);
	free(pgp.data);
	X509_free(lt);
	X509_free(lt2);
	X509_free(eves);
	X509_free(ep);
	X509_free(foreign);
	X509_free(longlived);
	X509_free(carols);
	X509_free(signing);
	EVP_PKEY_free(ltk);
	EVP_PKEY_free(lt2k);
	EVP_PKEY_free(evek);
	EVP_PKEY_free(sk);
}

static void
test_a_malformed_epoch_list_refuses_the_answer(void **state)
{
	static const char *const addrs[] = { "bob@b.test" };
	const char *bad[] = {
		"{\"address\":\"bob@b.test\",\"keys\":[],\"epoch\":{}}",
		"{\"address\":\"bob@b.test\",\"keys\":[],\"epoch\":[{\"format\":\"smime\",\"data\":\"!!\",\"not_after\":1}]}",
		"{\"address\":\"bob@b.test\",\"keys\":[],\"epoch\":[{\"format\":\"x\",\"data\":\"AAAA\",\"not_after\":1}]}",
		"{\"address\":\"bob@b.test\",\"keys\":[],\"epoch\":[" EK "," EK "," EK "]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct x_request req;
		struct buf body, answer;
		struct x_answer got;
		struct cables_err err = { "" };
		char *payload;

		x_request_make("b.test", addrs, 1, &req, &body);
		buf_release(&body);
		payload = xasprintf("{\"v\":1,\"domain\":\"b.test\",\"nonce\":\"%s\",\"issued\":%ld,\"results\":[%s]}",
		    req.nonce, NOW, bad[i]);
		sign_payload(key, payload, &answer);
		if (x_answer_verify(answer.data, answer.len, &req, (const char (*)[65])fpr, 1, NOW, &got, &err) !=
		    CABLES_ERR_SYNTAX || strstr(err.msg, "epoch keys for bob@b.test") == NULL)
			fail_msg("case %zu: %s", i, err.msg);
		free(payload);
		buf_release(&answer);
		x_request_release(&req);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_signed_answer_verifies),
		cmocka_unit_test(test_an_epoch_key_travels_in_the_signed_answer),
		cmocka_unit_test(test_bad_epoch_keys_are_refused),
		cmocka_unit_test(test_a_malformed_epoch_list_refuses_the_answer),
		cmocka_unit_test(test_what_is_refused),
		cmocka_unit_test(test_answers_only_for_what_was_asked),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_signed_requests),
		cmocka_unit_test(test_domain_key_and_txt),
		cmocka_unit_test(test_wkd_hash),
		cmocka_unit_test(test_rate_limit_buckets_are_per_client),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
