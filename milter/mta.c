/* mta - helpers over the MTA operations; see mta.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "mta.h"
#include "sink.h"
#include "util.h"

char *
mta_value(const struct mta *mta, const char *raw)
{
	char *v, *w;

	if (!mta->leadspc)
		while (*raw == ' ' || *raw == '\t')
			raw++;
	v = xstrdup(raw);
	/* MTAs keep folded values with bare LF line breaks. */
	for (w = v; *raw != '\0'; raw++)
		if (!(*raw == '\r' && raw[1] == '\n'))
			*w++ = *raw;
	*w = '\0';
	return v;
}

int
mta_replace_body(const struct mta *mta, const struct spool *sp, off_t from, off_t to)
{
	char *chunk = xmalloc(SINK_CHUNK_MAX);
	size_t got;
	int rc = 0;

	while (from < to) {
		size_t want = (size_t)(to - from) < SINK_CHUNK_MAX ? (size_t)(to - from) : SINK_CHUNK_MAX;

		if (spool_pread(sp, from, chunk, want, &got, NULL) != CABLES_OK || got == 0 ||
		    mta->replacebody(mta->ctx, chunk, got) != 0) {
			rc = -1;
			break;
		}
		from += (off_t)got;
	}
	free(chunk);
	return rc;
}
