/* spool_bio - OpenSSL BIOs over spools; see smime.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdlib.h>

#include "smime.h"
#include "util.h"

struct spool_cursor {
	struct spool *w;		/* writer */
	const struct spool *r;		/* reader */
	off_t pos, end;
	bool failed;
};

static BIO_METHOD *spool_method;
static pthread_once_t spool_once = PTHREAD_ONCE_INIT;

static int
spool_bio_write(BIO *bio, const char *in, int inl)
{
	struct spool_cursor *c = BIO_get_data(bio);

	if (c->w == NULL || inl < 0)
		return -1;
	if (spool_append(c->w, in, (size_t)inl, NULL) != CABLES_OK) {
		c->failed = true;
		return -1;
	}
	return inl;
}

static int
spool_bio_read(BIO *bio, char *out, int outl)
{
	struct spool_cursor *c = BIO_get_data(bio);
	size_t want, got;

	BIO_clear_retry_flags(bio);
	if (c->r == NULL || outl <= 0)
		return c->r == NULL ? -1 : 0;
	want = (size_t)(c->end - c->pos);
	if ((size_t)outl < want)
		want = (size_t)outl;
	if (want == 0)
		return 0;
	if (spool_pread(c->r, c->pos, out, want, &got, NULL) != CABLES_OK) {
		c->failed = true;
		return -1;
	}
	c->pos += (off_t)got;
	return (int)got;
}

static long
spool_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct spool_cursor *c = BIO_get_data(bio);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c->r != NULL && c->pos >= c->end;
	default:
		return 0;
	}
}

static int
spool_bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static int
spool_bio_destroy(BIO *bio)
{
	free(BIO_get_data(bio));
	BIO_set_data(bio, NULL);
	return 1;
}

static void
spool_method_init(void)
{
	spool_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cables spool");
	if (spool_method != NULL) {
		BIO_meth_set_write(spool_method, spool_bio_write);
		BIO_meth_set_read(spool_method, spool_bio_read);
		BIO_meth_set_ctrl(spool_method, spool_bio_ctrl);
		BIO_meth_set_create(spool_method, spool_bio_create);
		BIO_meth_set_destroy(spool_method, spool_bio_destroy);
	}
}

static BIO *
spool_bio_new(struct spool_cursor *c)
{
	BIO *bio;

	pthread_once(&spool_once, spool_method_init);
	bio = spool_method != NULL ? BIO_new(spool_method) : NULL;
	if (bio == NULL) {
		free(c);
		return NULL;
	}
	BIO_set_data(bio, c);
	return bio;
}

BIO *
spool_bio_writer(struct spool *sp)
{
	struct spool_cursor *c = xcalloc(1, sizeof(*c));

	c->w = sp;
	return spool_bio_new(c);
}

BIO *
spool_bio_reader(const struct spool *sp, off_t from, off_t to)
{
	struct spool_cursor *c = xcalloc(1, sizeof(*c));

	c->r = sp;
	c->pos = from;
	c->end = to;
	return spool_bio_new(c);
}
