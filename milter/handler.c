/* handler - what is common to every body handler; see handler.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool
handler_key_epoch(const struct handler_key *k)
{
	return k->epoch;
}

bool
handler_key_drop_epoch(struct handler_key *k)
{
	return k->epoch && k->drop_epoch != NULL && k->drop_epoch(k);
}

void
handler_key_free(struct handler_key *k)
{
	if (k != NULL)
		k->h->key_free(k);
}

bool
handler_key_names(const struct milter_env *env, const struct handler_key *k, const char *addr)
{
	return addr != NULL && k->h->key_names != NULL && k->h->key_names(env, k, addr);
}

enum harvest_outcome
handler_key_harvest(const struct milter_env *env, const struct handler_key *k, const char *from, char *why,
    size_t why_len)
{
	if (k->h->harvest != NULL)
		return k->h->harvest(env, k, from, why, why_len);
	snprintf(why, why_len, "%s keys are not harvested", k->h->name);
	return HARVEST_SKIPPED;
}

void
handler_signed_release(struct handler_signed *s)
{
	buf_release(&s->prologue);
	buf_release(&s->epilogue);
}

const char *
handler_sig_status_name(enum handler_sig_status s)
{
	switch (s) {
	case HANDLER_SIG_VALID:		return "valid";
	case HANDLER_SIG_UNTRUSTED:	return "untrusted";
	case HANDLER_SIG_INVALID:	return "invalid";
	}
	return "unknown";
}

void
handler_sig_release(struct handler_sig *sig)
{
	handler_key_free(sig->key);
	memset(sig, 0, sizeof(*sig));
}

static cables_status
pad_collect(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)err;
	buf_append(arg, p, n);
	return CABLES_OK;
}

void
handler_signed_entity(const struct entity_src *entity, const char *content_type, const struct buf *prologue,
    const struct buf *epilogue, struct buf *head, struct entity_src *out)
{
	entity_src_init(out);
	buf_printf(head, "Content-Type: %s\r\n\r\n", content_type);
	entity_src_mem(out, head->data, head->len);
	entity_src_mem(out, prologue->data, prologue->len);
	entity_src_append(out, entity);
	entity_src_mem(out, epilogue->data, epilogue->len);
}

cables_status
handler_pad(const struct body_handler *h, const struct milter_env *env, const struct handler_encrypt *in,
    const struct entity_src *entity,
    struct buf *field, struct entity_src *out, size_t *padded, struct cables_err *err)
{
	struct pad_cost cost;
	size_t len, target;
	cables_status st;

	*padded = 0;
	entity_src_init(out);
	if (in->pad) {
		len = entity_src_len(entity);
		h->pad_cost(env, in, entity->n + 1, &cost);
		target = pad_target(len, &cost, in->pad_cap);
		if (target > len) {
			if ((st = pad_write(target - len, pad_collect, field, err)) != CABLES_OK)
				return st;
			*padded = target - len;
			entity_src_mem(out, field->data, field->len);
		}
	}
	entity_src_append(out, entity);
	return CABLES_OK;
}
