/* heldseal - held messages sealed for the milter; see heldseal.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "heldseal.h"
#include "util.h"

#define MAGIC "CH1"
#define MAGIC_LEN 3

void
held_key_derive(const uint8_t store_key[SEAL_KEY_LEN], const char *id, const uint8_t salt[HELD_SALT_LEN],
    uint8_t out[HELD_KEY_LEN])
{
	static const char label[] = "cables held-message keys v1";
	uint8_t master[HELD_KEY_LEN], msg[KEYSTORE_HELD_ID_LEN + HELD_SALT_LEN];
	unsigned int n = 0;

	HMAC(EVP_sha256(), store_key, SEAL_KEY_LEN, (const uint8_t *)label, sizeof(label) - 1, master, &n);
	memcpy(msg, id, KEYSTORE_HELD_ID_LEN);
	memcpy(msg + KEYSTORE_HELD_ID_LEN, salt, HELD_SALT_LEN);
	HMAC(EVP_sha256(), master, sizeof(master), msg, sizeof(msg), out, &n);
	OPENSSL_cleanse(master, sizeof(master));
}

/* "LENGTH:TEXT," onto b: fields that cannot run into one another, whatever they hold. */
static void
field(struct buf *b, const char *text)
{
	if (text == NULL)
		text = "";
	buf_printf(b, "%zu:%s,", strlen(text), text);
}

/* "cables held v2", then the ID, the sender, the SASL login and the recipients, each length-prefixed. */
static char *
aad_of(const struct held_record *h)
{
	struct buf b;

	buf_init(&b);
	buf_appends(&b, "cables held v2\n");
	field(&b, h->id);
	field(&b, h->sender);
	field(&b, h->auth_login);
	field(&b, h->recipients);
	return b.data;
}

bool
held_login_ok(const char *login)
{
	size_t n = strlen(login);

	if (n == 0 || n > HELD_LOGIN_MAX)
		return false;
	for (const char *p = login; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool
id_ok(const char *id)
{
	return strlen(id) == KEYSTORE_HELD_ID_LEN && strspn(id, "0123456789abcdef") == KEYSTORE_HELD_ID_LEN;
}

cables_status
held_seal(held_key_fn *key_fn, void *arg, const struct held_record *h, const uint8_t *plain, size_t plain_len,
    uint8_t **blob, size_t *blob_len, struct cables_err *err)
{
	uint8_t salt[HELD_SALT_LEN], key[HELD_KEY_LEN], *inner = NULL;
	size_t inner_len = 0;
	char *aad;
	cables_status st;

	*blob = NULL;
	*blob_len = 0;
	if (!id_ok(h->id))
		return cables_fail(err, CABLES_ERR_ARG, "held message ID '%s' is malformed", h->id);
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return cables_fail(err, CABLES_ERR_CRYPTO, "no random bytes to seal a held message");
	if ((st = key_fn(arg, h->id, salt, key, err)) != CABLES_OK)
		return st;
	aad = aad_of(h);
	st = seal_close(key, aad, plain, plain_len, &inner, &inner_len, err);
	OPENSSL_cleanse(key, sizeof(key));
	free(aad);
	if (st != CABLES_OK)
		return st;
	*blob_len = MAGIC_LEN + HELD_SALT_LEN + inner_len;
	*blob = xmalloc(*blob_len);
	memcpy(*blob, MAGIC, MAGIC_LEN);
	memcpy(*blob + MAGIC_LEN, salt, HELD_SALT_LEN);
	memcpy(*blob + MAGIC_LEN + HELD_SALT_LEN, inner, inner_len);
	free(inner);
	return CABLES_OK;
}

/* The key of h's sealed message (h->message read), from its salt. */
static cables_status
message_key(held_key_fn *key_fn, void *arg, const struct held_record *h, uint8_t key[HELD_KEY_LEN],
    struct cables_err *err)
{
	if (h->message == NULL || h->message_len <= MAGIC_LEN + HELD_SALT_LEN ||
	    memcmp(h->message, MAGIC, MAGIC_LEN) != 0)
		return cables_fail(err, CABLES_ERR_CRYPTO, "held message %s: not a sealed message", h->id);
	if (!id_ok(h->id))
		return cables_fail(err, CABLES_ERR_ARG, "held message ID '%s' is malformed", h->id);
	return key_fn(arg, h->id, h->message + MAGIC_LEN, key, err);
}

cables_status
held_release_token(held_key_fn *key_fn, void *arg, const struct held_record *h, long long when,
    char out[KEYSTORE_HELD_TOKEN_LEN + 1], struct cables_err *err)
{
	uint8_t key[HELD_KEY_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *msg, num[32];
	struct buf b;
	cables_status st;

	if ((st = message_key(key_fn, arg, h, key, err)) != CABLES_OK)
		return st;
	buf_init(&b);
	buf_appends(&b, "cables release v2\n");
	snprintf(num, sizeof(num), "%lld", when);
	field(&b, num);
	field(&b, h->id);
	field(&b, h->sender);
	field(&b, h->auth_login);
	msg = b.data;
	HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)msg, strlen(msg), mac, &n);
	OPENSSL_cleanse(key, sizeof(key));
	free(msg);
	hex_encode(mac, KEYSTORE_HELD_TOKEN_LEN / 2, out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return CABLES_OK;
}

cables_status
held_unseal(held_key_fn *key_fn, void *arg, const struct held_record *h, uint8_t **plain, size_t *plain_len,
    struct cables_err *err)
{
	uint8_t key[HELD_KEY_LEN];
	char *aad;
	cables_status st;

	*plain = NULL;
	*plain_len = 0;
	if ((st = message_key(key_fn, arg, h, key, err)) != CABLES_OK)
		return st;
	aad = aad_of(h);
	st = seal_open(key, aad, h->message + MAGIC_LEN + HELD_SALT_LEN, h->message_len - MAGIC_LEN - HELD_SALT_LEN,
	    plain, plain_len, err);
	OPENSSL_cleanse(key, sizeof(key));
	free(aad);
	if (st != CABLES_OK)
		return cables_fail(err, CABLES_ERR_CRYPTO, "held message %s does not open: it was changed, belongs "
		    "to another record, or KeyStoreKey is not the one it was held under", h->id);
	return CABLES_OK;
}
