/*
 * hp_private - what lib/hp.c (the header plans) and lib/hp_legacy.c (the
 * legacy display element) share: a header section parsed in place.  Not
 * for use outside those two files.
 */
#ifndef CABLES_HP_PRIVATE_H
#define CABLES_HP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

struct field {
	const char *name;
	size_t name_len;
	const char *value;	/* after the colon, without the final line break */
	size_t value_len;
	unsigned int index;	/* 1-based among fields of this name */
};

struct fields {
	struct field *v;
	size_t n;
	size_t end;		/* offset after the header section (after the empty line) */
	bool blank;		/* the section ended with an empty line */
};

/*
 * Parse p[0..len) (at most HP_HEAD_MAX bytes of it); with strict, refuse a
 * value that could end its field or the section (hp.h).  Pointers are into
 * p.  Release with hp_fields_release (also after failure).
 */
cables_status hp_fields_parse(const char *p, size_t len, bool strict, struct fields *out, struct cables_err *err);
void hp_fields_release(struct fields *f);
const struct field *hp_first_named(const struct fields *fs, const char *name);

bool hp_name_is(const char *name, size_t len, const char *what);
/* A value unfolded and trimmed (malloc'd). */
char *hp_value_flat(const char *v, size_t n);
/* Is parameter name of a Content-Type value equal to want (case-insensitive)? */
bool hp_param_is(const char *ct, const char *name, const char *want);

#endif
