/*
 * pad - padding an entity before encryption so that ciphertext sizes fall
 * into a few buckets (doc/header-protection.md says which and why).
 *
 * The padding is one header field, PAD_FIELD_NAME, written as the first
 * field of the entity that is encrypted (the multipart/signed header when
 * Cables signs: that header is outside what the signature covers).  Its
 * value is random characters of the base64 alphabet folded into lines of
 * at most 77 characters, so no client shows it, compression gains little on it
 * and it carries nothing.  A receiving Cables cuts exactly that field
 * (pad_strip), so the local user gets the sender's entity byte for byte.
 *
 * The bucket is chosen for the estimated wire size of the result
 * (struct pad_cost: what the encryption and transfer encoding make of n
 * plaintext bytes), so wire sizes, not plaintext sizes, land on a few
 * values.  Nothing here allocates; pad_write streams through a callback.
 */
#ifndef CABLES_PAD_H
#define CABLES_PAD_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define PAD_FIELD_NAME "Content-Padding"
#define PAD_FIELD_MIN 20	/* "Content-Padding: x" CRLF: the shortest field */
#define PAD_FLOOR 4096		/* every wire size is at least this */
#define PAD_POW2_MAX (1024 * 1024)	/* powers of two up to here, Padme above */

/* Per policy entry: Padding. */
enum pad_mode { PAD_NONE, PAD_BUCKETS };

const char *pad_mode_name(enum pad_mode m);
bool pad_mode_parse(const char *word, enum pad_mode *m);

/*
 * wire(n) = fixed + ceil(n * num / den): e.g. CMS EnvelopedData in base64
 * lines of 64 characters is about (n + recipient infos + 50) * 11 / 8.
 * {0, 1, 1} buckets the plaintext itself.
 */
struct pad_cost {
	size_t fixed;
	unsigned int num, den;
};

size_t pad_wire(const struct pad_cost *c, size_t n);

/* The bucket a wire size falls in: the smallest bucket size >= n. */
size_t pad_bucket(size_t n);

/*
 * The plaintext length to pad an entity of len bytes to: the largest
 * length whose estimated wire size is within the bucket of
 * len + PAD_FIELD_MIN, so the padding field fits.  Returns len (no
 * padding) when even the smallest field would push the wire size past cap
 * (0: no cap; the MaxMessageSize a receiver is likely to enforce).
 */
size_t pad_target(size_t len, const struct pad_cost *c, size_t cap);

/*
 * Write a padding field of exactly n bytes (n >= PAD_FIELD_MIN, else
 * CABLES_ERR_ARG) to fn in chunks of at most 4 KiB; fn's failure is
 * returned.  The characters come from RAND_bytes (CABLES_ERR_CRYPTO when
 * it fails).
 */
cables_status pad_write(size_t n, cables_status (*fn)(void *arg, const void *p, size_t n, struct cables_err *err),
    void *arg, struct cables_err *err);

/*
 * The length of the padding field that starts the entity p[0..len) (its
 * first bytes): the first field, named PAD_FIELD_NAME, base64 characters
 * and folds only, and followed by more of the header.  0 when there is
 * none, and then nothing is cut.
 */
size_t pad_strip(const char *p, size_t len);

#endif
