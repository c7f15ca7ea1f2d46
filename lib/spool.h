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

#include <stddef.h>
#include <sys/types.h>

#include "status.h"

#define SPOOL_MEMORY_LIMIT (64 * 1024)

struct spool;

struct spool *spool_new(const char *tmpdir, size_t mem_limit, size_t max_size);
cables_status spool_append(struct spool *s, const void *p, size_t n, struct cables_err *err);
/* Read up to n bytes at offset; *got is 0 at the end. */
cables_status spool_pread(const struct spool *s, off_t offset, void *p, size_t n,
    size_t *got, struct cables_err *err);
size_t spool_size(const struct spool *s);
/* True once the content moved to a file (for tests and benchmarks). */
int spool_on_disk(const struct spool *s);
void spool_free(struct spool *s);

#endif
