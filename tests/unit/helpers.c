/* helpers - shared by the unit tests; see helpers.h. */
#include "autoconfig.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include <openssl/rand.h>

#include "helpers.h"
#include "seal.h"
#include "smime.h"

static cables_status
mem_sink_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	struct mem_sink *s = arg;

	s->writes++;
	if (n > s->max_chunk)
		s->max_chunk = n;
	if (s->fail_after != 0 && s->writes >= s->fail_after)
		return cables_fail(err, CABLES_ERR_IO, "test sink refuses write %zu", s->writes);
	buf_append(&s->data, p, n);
	return CABLES_OK;
}

void
mem_sink_init(struct mem_sink *s)
{
	memset(s, 0, sizeof(*s));
	s->sink.write = mem_sink_write;
	s->sink.arg = s;
	buf_init(&s->data);
}

void
mem_sink_release(struct mem_sink *s)
{
	buf_release(&s->data);
}

uint8_t *
test_b64_decode(const char *text, size_t len, size_t *out_len)
{
	char *clean = malloc(len + 1);
	uint8_t *out;
	size_t k = 0;
	int n, pad = 0;

	for (size_t i = 0; i < len; i++)
		if (text[i] != '\r' && text[i] != '\n')
			clean[k++] = text[i];
	clean[k] = '\0';
	if (k % 4 != 0) {
		free(clean);
		return NULL;
	}
	if (k >= 1 && clean[k - 1] == '=')
		pad++;
	if (k >= 2 && clean[k - 2] == '=')
		pad++;
	out = malloc(k / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (unsigned char *)clean, (int)k);
	free(clean);
	if (n < 0) {
		free(out);
		return NULL;
	}
	*out_len = (size_t)n - (size_t)pad;
	return out;
}

uint8_t *
test_cms_decrypt(const uint8_t *der, size_t len, X509 *cert, EVP_PKEY *key, size_t *out_len)
{
	BIO *in = BIO_new_mem_buf(der, (int)len), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = d2i_CMS_bio(in, NULL);
	uint8_t *result = NULL;
	char *p;
	long n;

	if (cms != NULL && CMS_decrypt(cms, key, cert, NULL, out, CMS_BINARY) == 1) {
		n = BIO_get_mem_data(out, &p);
		result = malloc((size_t)n + 1);
		memcpy(result, p, (size_t)n);
		*out_len = (size_t)n;
	} else {
		ERR_print_errors_fp(stderr);
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	return result;
}

char *
test_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/cables-test.XXXXXX", base != NULL ? base : "/tmp") < 0)
		abort();
	if (mkdtemp(dir) == NULL)
		abort();
	return dir;
}

void
test_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char *path;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
			abort();
		unlink(path);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

static int
fake_chgheader(void *ctx, const char *name, int index, const char *value)
{
	struct fake_mta *f = ctx;

	if (f->fail_headers)
		return -1;
	buf_printf(&f->ops, "chg %s %d %s\n", name, index, value != NULL ? value : "(delete)");
	return 0;
}

static int
fake_addheader(void *ctx, const char *name, const char *value)
{
	struct fake_mta *f = ctx;

	if (f->fail_headers)
		return -1;
	buf_printf(&f->ops, "add %s %s\n", name, value);
	return 0;
}

static int
fake_insheader(void *ctx, int index, const char *name, const char *value)
{
	struct fake_mta *f = ctx;

	if (f->fail_headers)
		return -1;
	buf_printf(&f->ops, "ins %d %s %s\n", index, name, value);
	return 0;
}

static int
fake_replacebody(void *ctx, const void *p, size_t n)
{
	struct fake_mta *f = ctx;

	f->body_calls++;
	if (f->fail_body_at != 0 && f->body_calls >= f->fail_body_at)
		return -1;
	buf_append(&f->body, p, n);
	return 0;
}

static int
fake_delrcpt(void *ctx, const char *rcpt)
{
	struct fake_mta *f = ctx;

	if (f->fail_headers)
		return -1;
	buf_printf(&f->ops, "del %s\n", rcpt);
	return 0;
}

static int
fake_quarantine(void *ctx, const char *reason)
{
	struct fake_mta *f = ctx;

	buf_printf(&f->ops, "quarantine %s\n", reason);
	return 0;
}

static int
fake_addrcpt(void *ctx, const char *rcpt)
{
	struct fake_mta *f = ctx;

	if (f->fail_headers)
		return -1;
	buf_printf(&f->ops, "addrcpt %s\n", rcpt);
	return 0;
}

void
fake_mta_allow_hold(struct fake_mta *f)
{
	f->mta.addrcpt = fake_addrcpt;
}

void
fake_mta_init(struct fake_mta *f, bool leadspc)
{
	memset(f, 0, sizeof(*f));
	buf_init(&f->body);
	buf_init(&f->ops);
	f->mta = (struct mta){ fake_chgheader, fake_addheader, fake_insheader, fake_replacebody, fake_delrcpt,
	    fake_quarantine, f, leadspc, NULL };
}

void
fake_mta_release(struct fake_mta *f)
{
	buf_release(&f->body);
	buf_release(&f->ops);
}

struct milter_fixture *
milter_fixture_new(const char *extra_config, time_t now)
{
	struct milter_fixture *fx = calloc(1, sizeof(*fx));
	struct cables_err err;
	char *text;

	fx->dir = test_tempdir();
	/* Header protection and padding off unless a test asks: the tests compare entities byte for byte. */
	text = xasprintf("LocalDomains a.test\nAuthservID mx.a.test\nKeydSocket none\nTempDir %s\nKeyStore %s/keys.db\n%s%s%s\n",
	    fx->dir, fx->dir, strstr(extra_config, "HeaderProtection") != NULL ? "" : "HeaderProtection off\n",
	    strstr(extra_config, "Padding") != NULL ? "" : "Padding none\n", extra_config);
	fx->cfg = config_parse("test.conf", text, strlen(text), &err);
	free(text);
	if (fx->cfg == NULL) {
		fprintf(stderr, "fixture config: %s\n", err.msg);
		abort();
	}
	if (keystore_open(&fx->ks, fx->cfg->key_store, true, &err) != CABLES_OK) {
		fprintf(stderr, "fixture key store: %s\n", err.msg);
		abort();
	}
	RAND_bytes(fx->seal_key, sizeof(fx->seal_key));
	fx->env.cfg = fx->cfg;
	fx->env.ks = fx->ks;
	fx->env.certs = smime_cache_new(16);
	fx->env.seal_key = fx->seal_key;
	fx->env.anchors = NULL;
	fx->env.now = now;
	fake_mta_init(&fx->fake, false);
	return fx;
}

void
milter_fixture_free(struct milter_fixture *fx)
{
	keystore_close(fx->ks);
	config_free(fx->cfg);
	smime_cache_free(fx->env.certs);
	fake_mta_release(&fx->fake);
	test_rmdir(fx->dir);
	free(fx->dir);
	free(fx);
}

void
milter_fixture_store(struct milter_fixture *fx, const char *addr, X509 *cert, EVP_PKEY *key)
{
	struct key_record r;
	uint8_t *der = NULL;
	size_t der_len = 0;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strcpy(r.format, "smime");
	smime_cert_fingerprint(cert, r.fingerprint);
	r.public_data = smime_cert_to_der(cert, &r.public_len);
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.source = "test";
	if (key != NULL) {
		if (smime_key_to_der(key, &der, &der_len, NULL) != CABLES_OK ||
		    seal_close(fx->seal_key, r.fingerprint, der, der_len, &r.secret_data, &r.secret_len, NULL) != CABLES_OK)
			abort();
		seal_free_secret(der, der_len);
	}
	if (keystore_put(fx->ks, &r, fx->env.now, NULL) != CABLES_OK)
		abort();
	free(r.public_data);
	free(r.secret_data);
}
