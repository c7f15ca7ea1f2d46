/* seal - private keys encrypted at rest; see seal.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "seal.h"
#include "util.h"

#define MAGIC "CS1"
#define MAGIC_LEN 3
#define NONCE_LEN 12
#define TAG_LEN 16

static cables_status
read_key_file(int fd, const char *path, uint8_t key[SEAL_KEY_LEN], struct cables_err *err)
{
	char text[2 * SEAL_KEY_LEN + 3];
	struct stat sb;
	ssize_t n;
	cables_status st = CABLES_OK;

	if (fstat(fd, &sb) != 0)
		return cables_fail(err, CABLES_ERR_IO, "%s: %s", path, strerror(errno));
	if ((sb.st_mode & 077) != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE,
		    "%s: store key is accessible by group or others (mode %04o); chmod 600 it",
		    path, (unsigned int)(sb.st_mode & 07777));
	n = read(fd, text, sizeof(text));
	if (n < 0)
		return cables_fail(err, CABLES_ERR_IO, "%s: %s", path, strerror(errno));
	/* Exactly 64 hex digits, optionally followed by one newline. */
	if (n == 2 * SEAL_KEY_LEN || (n == 2 * SEAL_KEY_LEN + 1 && text[2 * SEAL_KEY_LEN] == '\n')) {
		text[2 * SEAL_KEY_LEN] = '\0';
		if (!hex_decode(text, key, SEAL_KEY_LEN))
			st = CABLES_ERR_SYNTAX;
	} else {
		st = CABLES_ERR_SYNTAX;
	}
	OPENSSL_cleanse(text, sizeof(text));
	if (st != CABLES_OK)
		return cables_fail(err, st, "%s: not a store key (expected 64 hex digits)", path);
	return CABLES_OK;
}

static cables_status
create_key_file(const char *path, uint8_t key[SEAL_KEY_LEN], struct cables_err *err)
{
	char text[2 * SEAL_KEY_LEN + 2];
	int fd;
	ssize_t w;

	if (RAND_priv_bytes(key, SEAL_KEY_LEN) != 1)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "generating the store key");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cables_fail(err, CABLES_ERR_IO, "creating store key %s: %s", path, strerror(errno));
	hex_encode(key, SEAL_KEY_LEN, text);
	text[2 * SEAL_KEY_LEN] = '\n';
	w = write(fd, text, 2 * SEAL_KEY_LEN + 1);
	OPENSSL_cleanse(text, sizeof(text));
	if (w != 2 * SEAL_KEY_LEN + 1 || fsync(fd) != 0) {
		int saved = errno;
		close(fd);
		unlink(path);
		return cables_fail(err, CABLES_ERR_IO, "writing store key %s: %s", path, strerror(saved));
	}
	close(fd);
	return CABLES_OK;
}

cables_status
seal_key_load(const char *path, bool create, uint8_t key[SEAL_KEY_LEN], struct cables_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	cables_status st;

	if (fd < 0) {
		if (errno == ENOENT && create)
			return create_key_file(path, key, err);
		return cables_fail(err, CABLES_ERR_IO, "store key %s: %s", path, strerror(errno));
	}
	st = read_key_file(fd, path, key, err);
	close(fd);
	return st;
}

cables_status
seal_close(const uint8_t key[SEAL_KEY_LEN], const char *aad, const uint8_t *plain,
    size_t plain_len, uint8_t **blob, size_t *blob_len, struct cables_err *err)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t *out, *nonce, *ct;
	int n, fin;
	cables_status st = CABLES_OK;

	if (plain_len > (size_t)INT32_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "secret too large to seal");
	out = xmalloc(MAGIC_LEN + NONCE_LEN + plain_len + TAG_LEN);
	memcpy(out, MAGIC, MAGIC_LEN);
	nonce = out + MAGIC_LEN;
	ct = nonce + NONCE_LEN;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || RAND_bytes(nonce, NONCE_LEN) != 1 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, plain, (int)plain_len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + plain_len) != 1) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "sealing a private key");
		free(out);
		out = NULL;
	}
	EVP_CIPHER_CTX_free(ctx);
	*blob = out;
	*blob_len = out != NULL ? MAGIC_LEN + NONCE_LEN + plain_len + TAG_LEN : 0;
	return st;
}

cables_status
seal_open(const uint8_t key[SEAL_KEY_LEN], const char *aad, const uint8_t *blob,
    size_t blob_len, uint8_t **plain, size_t *plain_len, struct cables_err *err)
{
	EVP_CIPHER_CTX *ctx;
	const uint8_t *nonce, *ct, *tag;
	size_t ct_len;
	uint8_t *out;
	int n, fin;
	cables_status st = CABLES_OK;

	*plain = NULL;
	*plain_len = 0;
	if (blob_len < MAGIC_LEN + NONCE_LEN + TAG_LEN || memcmp(blob, MAGIC, MAGIC_LEN) != 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "sealed key: unknown format");
	nonce = blob + MAGIC_LEN;
	ct = nonce + NONCE_LEN;
	ct_len = blob_len - MAGIC_LEN - NONCE_LEN - TAG_LEN;
	tag = ct + ct_len;
	out = xmalloc(ct_len + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO,
		    "sealed key does not open: wrong store key or tampered key store");
		seal_free_secret(out, ct_len + 1);
		out = NULL;
	}
	EVP_CIPHER_CTX_free(ctx);
	if (out != NULL) {
		*plain = out;
		*plain_len = ct_len;
	}
	return st;
}

void
seal_free_secret(uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}
