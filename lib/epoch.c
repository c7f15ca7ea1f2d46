/* epoch - when epoch keys are made and deleted; see epoch.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "epoch.h"
#include "util.h"

long long
epoch_overlap(const struct epoch_times *t)
{
	/* One day of the default week: time for a sender that fetched the old key to use it. */
	return t->lifetime / 7;
}

long long
epoch_delete_at(long long not_after, const struct epoch_times *t)
{
	return not_after + t->grace;
}

void
epoch_plan_make(const struct key_list *epochs, const char *format, long long now,
    const struct epoch_times *t, struct epoch_plan *p)
{
	long long overlap = epoch_overlap(t), newest = 0;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < epochs->count; i++) {
		const struct key_record *r = &epochs->items[i];

		if (strcmp(r->format, format) != 0)
			continue;
		if (now >= epoch_delete_at(r->not_after, t)) {
			p->doomed = xreallocarray(p->doomed, p->ndoomed + 1, sizeof(*p->doomed));
			p->doomed[p->ndoomed++] = i;
		} else if (r->not_before <= now && r->not_after > newest)
			newest = r->not_after;
	}
	/*
	 * A key whose not_before is still ahead (a clock set back) does not
	 * count as current: a sender could not use it now.
	 */
	if (newest - overlap <= now) {
		p->make = true;
		p->not_before = now;
		p->not_after = now + t->lifetime + overlap;
	}
}

void
epoch_plan_release(struct epoch_plan *p)
{
	free(p->doomed);
	memset(p, 0, sizeof(*p));
}
