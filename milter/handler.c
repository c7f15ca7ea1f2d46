/* handler - what is common to every body handler; see handler.h. */
#include "autoconfig.h"

#include <stdlib.h>

#include "handler.h"
#include "handler_impl.h"

const struct body_handler *const handlers[NHANDLERS] = { &handler_smime, &handler_pgp };

const struct body_handler *
handler_of(enum key_format f)
{
	return f == FORMAT_PGP ? &handler_pgp : &handler_smime;
}

const struct body_handler *
handler_key_handler(const struct handler_key *k)
{
	return k->h;
}

void
handler_key_free(struct handler_key *k)
{
	if (k != NULL)
		k->h->key_free(k);
}
