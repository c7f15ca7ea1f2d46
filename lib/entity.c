/* entity - pieces of a MIME entity; see entity.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "entity.h"

void
entity_src_init(struct entity_src *e)
{
	e->n = 0;
}

static struct entity_part *
next_part(struct entity_src *e)
{
	if (e->n == ENTITY_MAX_PARTS)
		abort();
	return &e->part[e->n++];
}

void
entity_src_mem(struct entity_src *e, const void *p, size_t len)
{
	struct entity_part *part;

	if (len == 0)
		return;
	part = next_part(e);
	part->mem = p;
	part->len = len;
	part->sp = NULL;
}

size_t
entity_src_len(const struct entity_src *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += e->part[i].mem != NULL ? e->part[i].len :
		    e->part[i].to > e->part[i].from ? (size_t)(e->part[i].to - e->part[i].from) : 0;
	return n;
}

void
entity_src_spool(struct entity_src *e, const struct spool *sp, off_t from, off_t to)
{
	struct entity_part *part;

	if (sp == NULL)
		return;
	part = next_part(e);
	part->mem = NULL;
	part->sp = sp;
	part->from = from;
	part->to = to < 0 || (size_t)to > spool_size(sp) ? (off_t)spool_size(sp) : to;
}

void
entity_src_append(struct entity_src *e, const struct entity_src *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct entity_part *p = &src->part[i];

		if (p->mem != NULL)
			entity_src_mem(e, p->mem, p->len);
		else
			entity_src_spool(e, p->sp, p->from, p->to);
	}
}

cables_status
entity_src_each(const struct entity_src *e,
    cables_status (*fn)(void *arg, const void *p, size_t n, struct cables_err *err), void *arg,
    struct cables_err *err)
{
	char chunk[16384];
	cables_status st;

	for (size_t i = 0; i < e->n; i++) {
		const struct entity_part *part = &e->part[i];
		off_t off;

		if (part->mem != NULL) {
			if ((st = fn(arg, part->mem, part->len, err)) != CABLES_OK)
				return st;
			continue;
		}
		for (off = part->from; off < part->to;) {
			size_t want = sizeof(chunk), got;

			if ((off_t)want > part->to - off)
				want = (size_t)(part->to - off);
			if ((st = spool_pread(part->sp, off, chunk, want, &got, err)) != CABLES_OK)
				return st;
			if (got == 0)
				return cables_fail(err, CABLES_ERR_IO, "spool ended early");
			if ((st = fn(arg, chunk, got, err)) != CABLES_OK)
				return st;
			off += (off_t)got;
		}
	}
	return CABLES_OK;
}

void
entity_reader_init(struct entity_reader *r, const struct entity_src *e)
{
	r->e = e;
	r->part = 0;
	r->off = e->n > 0 && e->part[0].mem == NULL ? e->part[0].from : 0;
}

cables_status
entity_read(struct entity_reader *r, void *p, size_t n, size_t *got, struct cables_err *err)
{
	cables_status st;

	*got = 0;
	while (r->part < r->e->n) {
		const struct entity_part *part = &r->e->part[r->part];
		off_t end = part->mem != NULL ? (off_t)part->len : part->to;
		size_t want = n;

		if (r->off < end) {
			if ((off_t)want > end - r->off)
				want = (size_t)(end - r->off);
			if (part->mem != NULL) {
				memcpy(p, (const char *)part->mem + r->off, want);
				*got = want;
			} else {
				if ((st = spool_pread(part->sp, r->off, p, want, got, err)) != CABLES_OK)
					return st;
				if (*got == 0)
					return cables_fail(err, CABLES_ERR_IO, "spool ended early");
			}
			r->off += (off_t)*got;
			return CABLES_OK;
		}
		r->part++;
		if (r->part < r->e->n)
			r->off = r->e->part[r->part].mem == NULL ? r->e->part[r->part].from : 0;
	}
	return CABLES_OK;
}
