/*
 * keyctl_keyd - cables-keyctl's writes of public keys go through
 * cables-keyd, the key store's writer, on its administration socket
 * (KeydAdminSocket, root and AdminGroup only): imports, deletions and
 * listings are keyd requests (keydproto.h).  Keys with a
 * private half (generate, import of a PKCS#12 file) are sealed and stored
 * by keyctl itself, so that secrets never cross the socket and keyd never
 * holds the store's sealing key.  When keyd is not running (no socket, or
 * nothing listening) keyctl writes the store directly and says so; -o
 * always does.  SQLite's locking keeps that safe, and keyd reads the store
 * on every lookup, so nothing it caches goes stale.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyctl.h"
#include "keydproto.h"
#include "util.h"

#define KEYD_WRITE_TIMEOUT_MS 30000

bool
keyctl_via_keyd(const struct ctx *c)
{
	return c->cfg->keyd_admin_socket != NULL && !c->offline;
}

/*
 * Send req (a whole request, keydproto.h) to keyd; the reply, for the
 * caller to parse.  False when keyd is not running (the caller writes the
 * store itself); no answer: die.
 */
static bool
call(struct ctx *c, const struct buf *req, struct buf *reply)
{
	static bool noted;
	struct cables_err err;
	cables_status st;

	buf_init(reply);
	if ((st = keyd_call(c->cfg->keyd_admin_socket, req, KEYD_WRITE_TIMEOUT_MS, reply, &err)) == CABLES_ERR_NOTFOUND) {
		if (!noted)
			fprintf(stderr, "cables-keyctl: %s: cables-keyd is not running; writing the key store directly\n",
			    err.msg);
		noted = true;
		buf_release(reply);
		return false;
	}
	if (st != CABLES_OK)
		keyctl_die("%s", err.msg);
	return true;
}

/* Import public key r through keyd; false when keyd is not running. */
static bool
put_through_keyd(struct ctx *c, const struct key_record *r)
{
	struct keyd_import_reply stored;
	struct cables_err err;
	enum keyd_format format;
	struct buf req, reply;
	bool reached;

	if (!keyd_format_parse(r->format, &format))
		keyctl_die("%s: a key in format '%s' cannot be imported through cables-keyd", r->address, r->format);
	buf_init(&req);
	if (keyd_import_request_format(&req, r->address, format, c->force, r->public_data, r->public_len, &err) !=
	    CABLES_OK)
		keyctl_die("%s", err.msg);
	if ((reached = call(c, &req, &reply))) {
		if (keyd_import_reply_parse(reply.data, reply.len, &stored, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		buf_release(&reply);
	}
	buf_release(&req);
	return reached;
}

void
keyctl_put(struct ctx *c, const struct key_record *r)
{
	struct cables_err err;

	if (keyctl_via_keyd(c) && r->secret_data == NULL && put_through_keyd(c, r))
		return;
	if (c->ks == NULL)
		open_store(c, true);
	if (keystore_put(c->ks, r, c->now, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
}

bool
keyctl_keyd_delete(struct ctx *c, const char *addr, const char *fpr, size_t *deleted)
{
	struct cables_err err;
	struct buf req, reply;

	buf_init(&req);
	if (keyd_delete_request_format(&req, addr, fpr, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (!call(c, &req, &reply)) {
		buf_release(&req);
		return false;
	}
	if (keyd_delete_reply_parse(reply.data, reply.len, deleted, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	buf_release(&req);
	buf_release(&reply);
	return true;
}

bool
keyctl_keyd_list(struct ctx *c, struct key_list *out)
{
	struct buf req, reply;
	struct keyd_list_reply listed;
	struct cables_err err;

	memset(out, 0, sizeof(*out));
	buf_init(&req);
	keyd_list_request_format(&req);
	if (!call(c, &req, &reply)) {
		buf_release(&req);
		return false;
	}
	if (keyd_list_reply_parse(reply.data, reply.len, &listed, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	out->items = xcalloc(listed.n + 1, sizeof(*out->items));
	for (size_t i = 0; i < listed.n; i++) {
		const struct keyd_stored *k = &listed.keys[i];
		struct key_record *r = &out->items[out->count++];

		r->address = xstrdup(k->address);
		strlcpy_c(r->format, keyd_format_name(k->format), sizeof(r->format));
		strlcpy_c(r->fingerprint, k->fingerprint, sizeof(r->fingerprint));
		r->source = xstrdup(keyd_source_name(k->source));
		r->not_before = k->not_before;
		r->not_after = k->expires;
		r->secret_len = k->private_key;	/* only whether there is one */
	}
	keyd_list_reply_release(&listed);
	buf_release(&req);
	buf_release(&reply);
	return true;
}
