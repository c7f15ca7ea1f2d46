/*
 * fuzz_mime - MIME without a message context: Content-Type parsing and
 * parameters, encryption detection (S/MIME, PGP/MIME, inline PGP) over a
 * spooled body, address lists, and header-field iteration and splitting.
 *
 * Input: the Content-Type value on the first line, the
 * Content-Transfer-Encoding value on the second (an empty line means the
 * field is absent), the body after that.  The address and header
 * functions run over the whole input.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mime.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_init();
	fuzz_tmpdir();
	return 0;
}

static void
content_type(const char *ct)
{
	static const char *const params[] = { "boundary", "protocol", "smime-type", "name", "charset", "hp",
	    "protected-headers" };
	struct mime_type t;

	mime_type_parse(ct, &t);
	(void)mime_type_is(&t, "multipart", NULL);
	(void)mime_type_is(&t, "application", "pkcs7-mime");
	mime_type_release(&t);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		free(mime_type_param(ct, params[i]));
}

static void
addresses(const char *text)
{
	char **list;
	size_t n = mime_addresses(text, &list);

	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(mime_first_address(text));
}

static void
fields(const char *p, size_t len)
{
	struct mime_field f;
	struct buf outer, content;
	size_t off = 0, body_off;

	while (mime_field_next(p, len, &off, &f) == 1) {
		if (f.name < p || f.name + f.name_len > p + len || f.value + f.value_len > p + len ||
		    f.raw + f.raw_len > p + len || off > len)
			abort();	/* a field outside the data */
		(void)mime_is_content_header(f.name, f.name_len);
	}
	buf_init(&outer);
	buf_init(&content);
	mime_split(p, len, &outer, &content, &body_off);
	if (body_off > len || outer.len + content.len > len)
		abort();
	buf_release(&outer);
	buf_release(&content);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	char *ct = fuzz_line(data, size, &off), *cte = fuzz_line(data, size, &off), *text;
	const char *ct_value = ct[0] != '\0' ? ct : NULL, *cte_value = cte[0] != '\0' ? cte : NULL;
	struct spool *body = fuzz_spool(data + off, size - off);
	enum mime_crypto crypto;
	struct cables_err err;

	content_type(ct_value);
	(void)mime_cte_is_base64(cte_value);
	if (mime_detect(ct_value, cte_value, body, &crypto, &err) == CABLES_OK)
		(void)mime_crypto_name(crypto);
	spool_free(body);

	text = xstrndup((const char *)data, size);
	addresses(text);
	addresses(ct);
	free(text);
	fields((const char *)data, size);
	free(ct);
	free(cte);
	return 0;
}
