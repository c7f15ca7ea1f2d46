/* spool - message body spooling; see spool.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "util.h"

struct spool {
	char *tmpdir;
	size_t mem_limit;
	size_t max_size;
	size_t size;
	struct buf mem;		/* content while small; released once on disk */
	int fd;			/* unlinked temporary file, or -1 */
};

struct spool *
spool_new(const char *tmpdir, size_t mem_limit, size_t max_size)
{
	struct spool *s = xcalloc(1, sizeof(*s));

	s->tmpdir = xstrdup(tmpdir);
	s->mem_limit = mem_limit;
	s->max_size = max_size;
	s->fd = -1;
	buf_init(&s->mem);
	return s;
}

static cables_status
write_all(int fd, const void *p, size_t n, const char *dir, struct cables_err *err)
{
	if (!write_fully(fd, p, n))
		return cables_fail(err, CABLES_ERR_IO, "spool write in %s: %s", dir, strerror(errno));
	return CABLES_OK;
}

static cables_status
move_to_disk(struct spool *s, struct cables_err *err)
{
	char *path = xasprintf("%s/cables.XXXXXX", s->tmpdir);
	cables_status st;

	s->fd = mkostemp(path, O_CLOEXEC);
	if (s->fd < 0) {
		st = cables_fail(err, CABLES_ERR_IO, "spool file in %s: %s", s->tmpdir, strerror(errno));
		free(path);
		return st;
	}
	unlink(path);
	free(path);
	st = write_all(s->fd, s->mem.data, s->size, s->tmpdir, err);
	if (st != CABLES_OK) {
		close(s->fd);
		s->fd = -1;
		return st;
	}
	buf_release(&s->mem);
	return CABLES_OK;
}

cables_status
spool_append(struct spool *s, const void *p, size_t n, struct cables_err *err)
{
	cables_status st;

	if (s->max_size != 0 && (n > s->max_size || s->size > s->max_size - n))
		return cables_fail(err, CABLES_ERR_TOOBIG,
		    "message larger than MaxMessageSize (%zu bytes)", s->max_size);
	if (s->fd < 0 && s->size + n <= s->mem_limit) {
		buf_append(&s->mem, p, n);
		s->size += n;
		return CABLES_OK;
	}
	if (s->fd < 0 && (st = move_to_disk(s, err)) != CABLES_OK)
		return st;
	st = write_all(s->fd, p, n, s->tmpdir, err);
	if (st != CABLES_OK) {
		/* Keep size consistent with the file for what was written. */
		off_t end = lseek(s->fd, 0, SEEK_END);
		if (end >= 0)
			s->size = (size_t)end;
		return st;
	}
	s->size += n;
	return CABLES_OK;
}

cables_status
spool_pread(const struct spool *s, off_t offset, void *p, size_t n, size_t *got,
    struct cables_err *err)
{
	ssize_t r;

	*got = 0;
	if (offset < 0 || (size_t)offset >= s->size || n == 0)
		return CABLES_OK;
	if (n > s->size - (size_t)offset)
		n = s->size - (size_t)offset;
	if (s->fd < 0) {
		memcpy(p, s->mem.data + offset, n);
		*got = n;
		return CABLES_OK;
	}
	do
		r = pread(s->fd, p, n, offset);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return cables_fail(err, CABLES_ERR_IO, "spool read: %s", strerror(errno));
	*got = (size_t)r;
	return CABLES_OK;
}

cables_status
spool_read_buf(const struct spool *s, off_t offset, size_t max, struct buf *out, struct cables_err *err)
{
	char chunk[16384];
	size_t got;
	cables_status st;

	while (max > 0) {
		if ((st = spool_pread(s, offset, chunk, max < sizeof(chunk) ? max : sizeof(chunk), &got, err)) !=
		    CABLES_OK)
			return st;
		if (got == 0)
			break;
		buf_append(out, chunk, got);
		offset += (off_t)got;
		max -= got;
	}
	return CABLES_OK;
}

size_t
spool_size(const struct spool *s)
{
	return s->size;
}

int
spool_on_disk(const struct spool *s)
{
	return s->fd >= 0;
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	buf_release(&s->mem);
	free(s->tmpdir);
	free(s);
}

void
spool_lines_init(struct spool_lines *l, const struct spool *sp, off_t from, off_t to)
{
	l->sp = sp;
	l->next = from;
	l->to = to < 0 || (size_t)to > sp->size ? (off_t)sp->size : to;
	l->have = l->used = 0;
	l->at_start = true;
}

cables_status
spool_lines_next(struct spool_lines *l, const char **line, size_t *n, off_t *off, bool *at_start,
    bool *whole, struct cables_err *err)
{
	char *nl;
	size_t got, room;
	cables_status st;

	if (l->used == l->have || memchr(l->buf + l->used, '\n', l->have - l->used) == NULL) {
		memmove(l->buf, l->buf + l->used, l->have - l->used);
		l->have -= l->used;
		l->used = 0;
		room = sizeof(l->buf) - l->have;
		if ((off_t)room > l->to - l->next)
			room = (size_t)(l->to - l->next);
		if (room > 0) {
			st = spool_pread(l->sp, l->next, l->buf + l->have, room, &got, err);
			if (st != CABLES_OK)
				return st;
			l->next += (off_t)got;
			l->have += got;
		}
	}
	*line = l->buf + l->used;
	*off = l->next - (off_t)l->have + (off_t)l->used;
	nl = memchr(l->buf + l->used, '\n', l->have - l->used);
	*n = nl != NULL ? (size_t)(nl - *line) + 1 : l->have - l->used;
	l->used += *n;
	*at_start = l->at_start;
	*whole = nl != NULL || (l->used == l->have && l->next >= l->to);
	l->at_start = nl != NULL;
	return CABLES_OK;
}
