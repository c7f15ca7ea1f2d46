/*
 * cms_detach - read a CMS ContentInfo held in a spool without loading its
 * content into memory.
 *
 * OpenSSL parses a CMS structure whole, so a 50 MB message would need
 * 50 MB of memory.  cms_detach() parses only the outer BER layers
 * (ContentInfo, then EnvelopedData / AuthEnvelopedData / SignedData, then
 * the content info inside) and produces a "skeleton": the same structure
 * with its content octets left out, as if the content were detached, which
 * OpenSSL decodes in a few kilobytes.  cms_content_bio() then streams the
 * content octets (a primitive or a BER-chunked OCTET STRING) from the
 * spool, to be given to CMS_decrypt() or CMS_verify() as detached content.
 *
 * Hostile input is expected: nesting is bounded, every length is checked
 * against the data, the skeleton is limited to CMS_SKELETON_MAX bytes, and
 * anything unexpected is CABLES_ERR_SYNTAX with what was wrong.
 */
#ifndef CABLES_CMS_DETACH_H
#define CABLES_CMS_DETACH_H

#include <stdbool.h>
#include <sys/types.h>

#include <openssl/bio.h>

#include "spool.h"
#include "status.h"
#include "util.h"

#define CMS_SKELETON_MAX (1024 * 1024)

enum cms_kind { CMS_KIND_ENVELOPED, CMS_KIND_AUTH_ENVELOPED, CMS_KIND_SIGNED };

struct cms_detached {
	enum cms_kind kind;
	char algorithm[64];	/* content-encryption algorithm (enveloped kinds), for messages */
	struct buf skeleton;	/* DER ContentInfo without the content octets */
	bool has_content;	/* false: the input itself was detached */
	off_t content_off;	/* the OCTET STRING element holding the content */
	off_t end;		/* offset just after the ContentInfo (trailing data follows) */
};

/* Parse der; on success d holds the skeleton (cms_detached_release() frees it). */
cables_status cms_detach(const struct spool *der, struct cms_detached *d, struct cables_err *err);
void cms_detached_release(struct cms_detached *d);

/*
 * A read-only BIO yielding the content octets.  A malformed chunk found
 * while streaming makes the read fail.  The spool must outlive the BIO.
 */
BIO *cms_content_bio(const struct spool *der, const struct cms_detached *d);

/* Decode base64 body text into out (binary), skipping line breaks and white space. */
cables_status cms_decode_base64(const struct spool *in, off_t from, struct spool *out,
    struct cables_err *err);

#endif
