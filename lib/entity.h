/*
 * entity - a MIME entity to be encrypted or signed, described as a short
 * sequence of pieces: bytes in memory (header fields, boundaries) and
 * ranges of spools (bodies).  Nothing is copied: the pieces are borrowed
 * and must outlive the entity_src.  A signed-then-encrypted message is the
 * multipart/signed prologue, the original head, the original body spool
 * and the signature part, read in one pass.
 */
#ifndef CABLES_ENTITY_H
#define CABLES_ENTITY_H

#include <stddef.h>
#include <sys/types.h>

#include "spool.h"
#include "status.h"

#define ENTITY_MAX_PARTS 16	/* a signed, padded entity with legacy display elements in two parts: 13 */

struct entity_part {
	const void *mem;	/* bytes in memory, or NULL for a spool range */
	size_t len;
	const struct spool *sp;
	off_t from, to;
};

struct entity_src {
	struct entity_part part[ENTITY_MAX_PARTS];
	size_t n;
};

void entity_src_init(struct entity_src *e);
/* Add pieces; more than ENTITY_MAX_PARTS is a programming error (abort). */
void entity_src_mem(struct entity_src *e, const void *p, size_t len);
/* Bytes [from, to) of sp; to < 0 means to the end.  sp NULL adds nothing. */
void entity_src_spool(struct entity_src *e, const struct spool *sp, off_t from, off_t to);

/* Add every piece of src, in order (src's pieces stay borrowed from their owners). */
void entity_src_append(struct entity_src *e, const struct entity_src *src);

/* How many bytes the entity has. */
size_t entity_src_len(const struct entity_src *e);
/* Hand every byte to fn in order, in chunks of at most 16 KiB; stops at fn's first failure. */
cables_status entity_src_each(const struct entity_src *e,
    cables_status (*fn)(void *arg, const void *p, size_t n, struct cables_err *err), void *arg,
    struct cables_err *err);

/*
 * Pull the bytes instead (for libraries that read their input): each call
 * gives up to n bytes, *got 0 at the end.
 */
struct entity_reader {
	const struct entity_src *e;
	size_t part;
	off_t off;	/* within the part: bytes for memory, absolute for a spool range */
};

void entity_reader_init(struct entity_reader *r, const struct entity_src *e);
cables_status entity_read(struct entity_reader *r, void *p, size_t n, size_t *got, struct cables_err *err);

#endif
