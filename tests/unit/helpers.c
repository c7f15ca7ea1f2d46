/* helpers - shared by the unit tests; see helpers.h. */
#include "autoconfig.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "helpers.h"

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
