/*
 * mta - what the milter asks of the MTA, as a table of operations: the
 * milter implements it with smfi_*(), tests with a recorder.  Each returns
 * 0 on success and -1 on failure.
 *
 * Header values are passed as they should appear after the colon when the
 * MTA keeps leading space (SMFIP_HDR_LEADSPC, leadspc true); mta_value()
 * turns such a value into what to pass to these operations.
 */
#ifndef CABLES_MTA_H
#define CABLES_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "spool.h"

struct mta {
	int (*chgheader)(void *ctx, const char *name, int index, const char *value);
	int (*addheader)(void *ctx, const char *name, const char *value);
	int (*insheader)(void *ctx, int index, const char *name, const char *value);
	int (*replacebody)(void *ctx, const void *p, size_t n);
	int (*delrcpt)(void *ctx, const char *rcpt);		/* as the MTA gave it */
	int (*quarantine)(void *ctx, const char *reason);	/* hold queue */
	void *ctx;
	bool leadspc;
	/* Add a recipient ("<addr>"); NULL when the MTA does not let the milter add, remove and quarantine (hold.h). */
	int (*addrcpt)(void *ctx, const char *rcpt);
};

/*
 * The value to pass for a field whose text after the colon is raw (" x"):
 * raw itself with LF line breaks when the MTA keeps leading space,
 * otherwise without its leading blanks.  The result is malloc'd.
 */
char *mta_value(const struct mta *mta, const char *raw);

/* Replace the body with bytes [from, to) of sp, in chunks one milter packet can carry. */
int mta_replace_body(const struct mta *mta, const struct spool *sp, off_t from, off_t to);

#endif
