/* smime_cache - parsed certificates by content; see smime.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "smime.h"
#include "util.h"

struct smime_cache_slot {
	unsigned char digest[32];	/* SHA-256 of the DER */
	X509 *cert;			/* one reference held by the cache */
};

struct smime_key_slot {
	char fingerprint[65];		/* of the certificate the key belongs to */
	EVP_PKEY *key;
};

struct smime_cache {
	pthread_mutex_t lock;
	size_t capacity;
	struct smime_cache_slot *slots;
	struct smime_key_slot *keys;
	unsigned long hits, misses;
};

struct smime_cache *
smime_cache_new(size_t capacity)
{
	struct smime_cache *c = xcalloc(1, sizeof(*c));

	c->capacity = capacity > 0 ? capacity : 1;
	c->slots = xcalloc(c->capacity, sizeof(*c->slots));
	c->keys = xcalloc(c->capacity, sizeof(*c->keys));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void
smime_cache_free(struct smime_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->capacity; i++) {
		X509_free(c->slots[i].cert);
		EVP_PKEY_free(c->keys[i].key);
	}
	free(c->slots);
	free(c->keys);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

X509 *
smime_cache_cert(struct smime_cache *c, const uint8_t *der, size_t len)
{
	unsigned char digest[32];
	struct smime_cache_slot *slot;
	size_t index;
	X509 *cert;

	if (c == NULL)
		return smime_cert_from_der(der, len);
	if (EVP_Digest(der, len, digest, NULL, EVP_sha256(), NULL) != 1)
		return smime_cert_from_der(der, len);
	memcpy(&index, digest, sizeof(index));
	slot = &c->slots[index % c->capacity];
	pthread_mutex_lock(&c->lock);
	if (slot->cert != NULL && memcmp(slot->digest, digest, sizeof(digest)) == 0) {
		cert = slot->cert;
		X509_up_ref(cert);
		c->hits++;
		pthread_mutex_unlock(&c->lock);
		return cert;
	}
	c->misses++;
	pthread_mutex_unlock(&c->lock);
	/* Parse outside the lock: it is the slow part. */
	cert = smime_cert_from_der(der, len);
	if (cert == NULL)
		return NULL;
	pthread_mutex_lock(&c->lock);
	X509_free(slot->cert);
	memcpy(slot->digest, digest, sizeof(digest));
	slot->cert = cert;
	X509_up_ref(cert);
	pthread_mutex_unlock(&c->lock);
	return cert;
}

void
smime_cache_stats(struct smime_cache *c, unsigned long *hits, unsigned long *misses)
{
	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->lock);
}

static struct smime_key_slot *
key_slot(struct smime_cache *c, const char *fingerprint)
{
	unsigned long h = 5381;

	for (const char *p = fingerprint; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return &c->keys[h % c->capacity];
}

EVP_PKEY *
smime_cache_key_get(struct smime_cache *c, const char *fingerprint)
{
	struct smime_key_slot *slot;
	EVP_PKEY *key = NULL;

	if (c == NULL)
		return NULL;
	slot = key_slot(c, fingerprint);
	pthread_mutex_lock(&c->lock);
	if (slot->key != NULL && strcmp(slot->fingerprint, fingerprint) == 0) {
		key = slot->key;
		EVP_PKEY_up_ref(key);
	}
	pthread_mutex_unlock(&c->lock);
	return key;
}

void
smime_cache_key_put(struct smime_cache *c, const char *fingerprint, EVP_PKEY *key)
{
	struct smime_key_slot *slot;

	if (c == NULL)
		return;
	slot = key_slot(c, fingerprint);
	pthread_mutex_lock(&c->lock);
	EVP_PKEY_free(slot->key);
	strlcpy_c(slot->fingerprint, fingerprint, sizeof(slot->fingerprint));
	EVP_PKEY_up_ref(key);
	slot->key = key;
	pthread_mutex_unlock(&c->lock);
}
