/*
 * spool - a message body held in memory while small, in an unlinked
 * temporary file once it passes a threshold, so that memory use does not
 * grow with message size.
 *
 * The temporary file is created with mkstemp() in the configured directory
 * and unlinked at once: a crash leaves nothing behind, and only this process
 * can read it.  spool_append() fails with CABLES_ERR_TOOBIG past max_size
 * (0 = no limit) and with CABLES_ERR_IO when the disk is full; the spool
 * stays valid (its content is what was stored before the failure).
 *
 * A spool belongs to one message; spool_free() releases it (NULL is fine).
 */
#ifndef CABLES_SPOOL_H
#define CABLES_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "status.h"
#include "util.h"

#define SPOOL_MEMORY_LIMIT (64 * 1024)

struct spool;

struct spool *spool_new(const char *tmpdir, size_t mem_limit, size_t max_size);
cables_status spool_append(struct spool *s, const void *p, size_t n, struct cables_err *err);
/* Read up to n bytes at offset; *got is 0 at the end. */
cables_status spool_pread(const struct spool *s, off_t offset, void *p, size_t n,
    size_t *got, struct cables_err *err);
/* Append up to max bytes from offset (fewer only at the end) to out, which must be initialised. */
cables_status spool_read_buf(const struct spool *s, off_t offset, size_t max, struct buf *out,
    struct cables_err *err);
size_t spool_size(const struct spool *s);
/* True once the content moved to a file (for tests and benchmarks). */
int spool_on_disk(const struct spool *s);
void spool_free(struct spool *s);

/*
 * Lines of a spool range [from, to).  Lines longer than the buffer come in
 * pieces: at_start tells whether a piece begins a line, whole whether it
 * ends one (at a line break, or at the end of the range).  The piece
 * returned stays valid until the next call.  n == 0 means the end.
 */
struct spool_lines {
	const struct spool *sp;
	off_t next;		/* spool offset of buf[have] */
	off_t to;
	char buf[8192];
	size_t have, used;
	bool at_start;
};

void spool_lines_init(struct spool_lines *l, const struct spool *sp, off_t from, off_t to);
cables_status spool_lines_next(struct spool_lines *l, const char **line, size_t *n, off_t *off,
    bool *at_start, bool *whole, struct cables_err *err);

#endif
