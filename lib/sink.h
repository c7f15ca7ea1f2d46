/*
 * sink - where a crypto backend writes the entity it produces.
 *
 * The milter's sink hands each chunk to the MTA (smfi_replacebody); tests
 * collect chunks in a buffer.  A sink that fails returns a status and fills
 * err; the producer stops and returns that status.  Chunks are at most
 * SINK_CHUNK_MAX bytes, what one milter body-replacement packet can carry.
 */
#ifndef CABLES_SINK_H
#define CABLES_SINK_H

#include <stddef.h>

#include "status.h"

#define SINK_CHUNK_MAX 65535

struct byte_sink {
	cables_status (*write)(void *arg, const void *p, size_t n, struct cables_err *err);
	void *arg;
};

#endif
