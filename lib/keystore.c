/*
 * keystore - the key store's front end: picks the backend by KeyStore's
 * form and dispatches to its table (keystore_backend.h); the record
 * helpers every backend shares.  See keystore.h.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "keystore_backend.h"
#include "util.h"

bool
keystore_spec_is_url(const char *spec)
{
	return strncasecmp(spec, "postgresql://", 13) == 0 || strncasecmp(spec, "postgres://", 11) == 0;
}

void
keystore_spec_redact(const char *spec, char *out, size_t outlen)
{
	if (keystore_spec_is_url(spec))
		keystore_pg_redact(spec, out, outlen);
	else
		strlcpy_c(out, spec, outlen);
}

cables_status
keystore_open(struct keystore **ks, const char *spec, bool create, struct cables_err *err)
{
	if (keystore_spec_is_url(spec))
		return keystore_pg_open(ks, spec, create, err);
	return keystore_sqlite_open(ks, spec, create, err);
}

void
keystore_close(struct keystore *ks)
{
	if (ks != NULL)
		ks->ops->close(ks);
}

const char *
keystore_type(const struct keystore *ks)
{
	return ks->ops->type;
}

const char *
keystore_name(const struct keystore *ks)
{
	return ks->name;
}

cables_status
keystore_put(struct keystore *ks, const struct key_record *r, time_t now, struct cables_err *err)
{
	return ks->ops->put(ks, r, now, err);
}

cables_status
keystore_restore(struct keystore *ks, const struct key_record *r, bool *added, struct cables_err *err)
{
	return ks->ops->restore(ks, r, added, err);
}

cables_status
keystore_lookup(struct keystore *ks, const char *address, const char *format, struct key_list *out,
    struct cables_err *err)
{
	return ks->ops->lookup(ks, address, format, out, err);
}

cables_status
keystore_list(struct keystore *ks, bool with_data, struct key_list *out, struct cables_err *err)
{
	return ks->ops->list(ks, with_data, out, err);
}

cables_status
keystore_epoch_list(struct keystore *ks, const char *address, bool with_data, struct key_list *out,
    struct cables_err *err)
{
	return ks->ops->epoch_list(ks, address, with_data, out, err);
}

cables_status
keystore_wal_truncate(struct keystore *ks, struct cables_err *err)
{
	return ks->ops->wal_truncate(ks, err);
}

cables_status
keystore_delete(struct keystore *ks, const char *address, const char *fpr_prefix, size_t *deleted,
    struct cables_err *err)
{
	return ks->ops->delete(ks, address, fpr_prefix, deleted, err);
}

cables_status
keystore_delete_epoch(struct keystore *ks, long long id, struct cables_err *err)
{
	return ks->ops->delete_epoch(ks, id, err);
}

cables_status
keystore_pin_get(struct keystore *ks, const char *address, const char *format, struct key_pin *out,
    struct cables_err *err)
{
	return ks->ops->pin_get(ks, address, format, out, err);
}

cables_status
keystore_pin_set(struct keystore *ks, const struct key_pin *p, struct cables_err *err)
{
	return ks->ops->pin_set(ks, p, err);
}

cables_status
keystore_pin_list(struct keystore *ks, struct key_pin **out, size_t *n, struct cables_err *err)
{
	return ks->ops->pin_list(ks, out, n, err);
}

cables_status
keystore_pin_delete(struct keystore *ks, const char *address, size_t *deleted, struct cables_err *err)
{
	return ks->ops->pin_delete(ks, address, deleted, err);
}

int
keystore_changes_fd(struct keystore *ks)
{
	return ks->ops->changes_fd(ks);
}

cables_status
keystore_changes_take(struct keystore *ks, keystore_change_fn *fn, void *arg, struct cables_err *err)
{
	return ks->ops->changes_take(ks, fn, arg, err);
}

cables_status
keystore_data_version(struct keystore *ks, long long *version, struct cables_err *err)
{
	return ks->ops->data_version(ks, version, err);
}

cables_status
keystore_held_add(struct keystore *ks, const struct held_record *h, struct cables_err *err)
{
	return ks->ops->held_add(ks, h, err);
}

cables_status
keystore_held_get(struct keystore *ks, const char *id, bool with_message, struct held_record *out,
    struct cables_err *err)
{
	return ks->ops->held_get(ks, id, with_message, 0, out, err);
}

cables_status
keystore_held_get_bounded(struct keystore *ks, const char *id, size_t max, struct held_record *out,
    struct cables_err *err)
{
	return ks->ops->held_get(ks, id, true, max, out, err);
}

cables_status
keystore_held_list(struct keystore *ks, int which, time_t now, struct held_record **out, size_t *n,
    struct cables_err *err)
{
	return ks->ops->held_list(ks, which, now, out, n, err);
}

cables_status
keystore_held_claim(struct keystore *ks, const char *id, time_t now, int which, time_t until, bool *claimed,
    struct cables_err *err)
{
	return ks->ops->held_claim(ks, id, now, which, until, claimed, err);
}

cables_status
keystore_held_update(struct keystore *ks, const struct held_record *h, struct cables_err *err)
{
	return ks->ops->held_update(ks, h, 0, err);
}

cables_status
keystore_held_update_claimed(struct keystore *ks, const struct held_record *h, time_t claimed_until,
    struct cables_err *err)
{
	return ks->ops->held_update(ks, h, claimed_until, err);
}

cables_status
keystore_held_delete(struct keystore *ks, const char *id, struct cables_err *err)
{
	return ks->ops->held_delete(ks, id, err);
}

cables_status
keystore_held_prune(struct keystore *ks, time_t before, struct cables_err *err)
{
	return ks->ops->held_prune(ks, before, err);
}

cables_status
keystore_held_usage(struct keystore *ks, const char *sender, struct held_usage *out, struct cables_err *err)
{
	return ks->ops->held_usage(ks, sender, out, err);
}

cables_status
keystore_encrypting_note(struct keystore *ks, const char *domain, const char *source, time_t now,
    struct cables_err *err)
{
	return ks->ops->encrypting_note(ks, domain, source, now, err);
}

cables_status
keystore_encrypting_list(struct keystore *ks, const char *domain, struct encrypting_domain **out, size_t *n,
    struct cables_err *err)
{
	return ks->ops->encrypting_list(ks, domain, out, n, err);
}

cables_status
keystore_encrypting_restore(struct keystore *ks, const struct encrypting_domain *d, bool *added,
    struct cables_err *err)
{
	return ks->ops->encrypting_restore(ks, d, added, err);
}

cables_status
keystore_encrypting_forget(struct keystore *ks, const char *domain, struct cables_err *err)
{
	return ks->ops->encrypting_forget(ks, domain, err);
}

cables_status
keystore_encrypting_tell(struct keystore *ks, const char *domain, time_t now, time_t told_before, bool *first,
    struct cables_err *err)
{
	return ks->ops->encrypting_tell(ks, domain, now, told_before, first, err);
}

cables_status
keystore_key_change_tell(struct keystore *ks, const char *address, const char *format, const char *old,
    const char *new, time_t now, bool *first, struct cables_err *err)
{
	return ks->ops->key_change_tell(ks, address, format, old, new, now, first, err);
}

cables_status
keystore_key_change_list(struct keystore *ks, struct key_change_alert **out, size_t *n, struct cables_err *err)
{
	return ks->ops->key_change_list(ks, out, n, err);
}

cables_status
keystore_encrypting_untell(struct keystore *ks, const char *domain, time_t now, time_t was, struct cables_err *err)
{
	return ks->ops->encrypting_untell(ks, domain, now, was, err);
}

cables_status
keystore_key_change_untell(struct keystore *ks, const char *address, const char *format, const char *old,
    const char *new, struct cables_err *err)
{
	return ks->ops->key_change_untell(ks, address, format, old, new, err);
}

cables_status
keystore_key_change_prune(struct keystore *ks, time_t before, struct cables_err *err)
{
	return ks->ops->key_change_prune(ks, before, err);
}

/* One row of keystore_encrypting_list(), for every backend. */
cables_status
keystore_encrypting_get(struct keystore *ks, const char *domain, struct encrypting_domain *out, struct cables_err *err)
{
	struct encrypting_domain *rows;
	size_t n;
	cables_status st;

	memset(out, 0, sizeof(*out));
	if ((st = keystore_encrypting_list(ks, domain, &rows, &n, err)) != CABLES_OK)
		return st;
	if (n == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "%s is not remembered as encrypting", domain);
	else
		*out = rows[0];
	free(rows);
	return st;
}

bool
key_source_discovered(const char *source)
{
	return source != NULL && (strncmp(source, "dns-", 4) == 0 || strcmp(source, "peer") == 0 ||
	    strcmp(source, "wkd") == 0);
}

void
key_record_release(struct key_record *r)
{
	free(r->address);
	free(r->public_data);
	if (r->secret_data != NULL)
		OPENSSL_clear_free(r->secret_data, r->secret_len);
	free(r->source);
	memset(r, 0, sizeof(*r));
}

void
key_list_release(struct key_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		key_record_release(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

void
key_list_take(struct key_list *to, struct key_list *from)
{
	if (from->count == 0)
		return;
	to->items = xreallocarray(to->items, to->count + from->count, sizeof(*to->items));
	memcpy(to->items + to->count, from->items, from->count * sizeof(*from->items));
	to->count += from->count;
	free(from->items);
	from->items = NULL;
	from->count = 0;
}


void
key_pin_release(struct key_pin *p)
{
	free(p->address);
	free(p->source);
	free(p->offered_source);
	memset(p, 0, sizeof(*p));
}

void
held_record_release(struct held_record *h)
{
	free(h->sender);
	free(h->recipients);
	free(h->waiting);
	free(h->auth_login);
	if (h->message != NULL)
		OPENSSL_clear_free(h->message, h->message_len);
	free(h->last_error);
	memset(h, 0, sizeof(*h));
}

void
held_list_release(struct held_record *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		held_record_release(&list[i]);
	free(list);
}
