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

#include <openssl/evp.h>

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
 * Send req (its final empty line added here) to keyd; the reply.  False
 * when keyd is not running (the caller writes the store itself); no answer
 * or an error= line: die.
 */
static bool
call(struct ctx *c, struct buf *req, struct buf *reply)
{
	static bool noted;
	struct cables_err err;
	const char *e = NULL;
	cables_status st;

	buf_appends(req, "\n");
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
	buf_append(reply, "", 1);
	reply->len--;
	if (strncmp(reply->data, "error=", 6) == 0)
		e = reply->data + 6;
	else if ((e = strstr(reply->data, "\nerror=")) != NULL)
		e += 7;
	if (e != NULL)
		keyctl_die("cables-keyd: %.*s", (int)strcspn(e, "\n"), e);
	return true;
}

/* Import public key r through keyd; false when keyd is not running. */
static bool
put_through_keyd(struct ctx *c, const struct key_record *r)
{
	struct buf req, reply;
	char *b64 = xmalloc(4 * ((r->public_len + 2) / 3) + 1);
	bool reached;

	EVP_EncodeBlock((unsigned char *)b64, r->public_data, (int)r->public_len);
	buf_init(&req);
	buf_printf(&req, "request=import\naddress=%s\nformat=%s\nforce=%s\n", r->address, r->format,
	    c->force ? "yes" : "no");
	for (size_t off = 0, n = strlen(b64); off < n; off += 76)
		buf_printf(&req, "data=%.76s\n", b64 + off);
	free(b64);
	if ((reached = call(c, &req, &reply))) {
		if (strncmp(reply.data, "stored=", 7) != 0)
			keyctl_die("cables-keyd: unexpected reply to an import: %.*s", (int)strcspn(reply.data, "\n"),
			    reply.data);
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
	struct buf req, reply;
	unsigned long n;

	buf_init(&req);
	buf_printf(&req, "request=delete\naddress=%s\n", addr);
	if (fpr != NULL)
		buf_printf(&req, "fingerprint=%s\n", fpr);
	if (!call(c, &req, &reply)) {
		buf_release(&req);
		return false;
	}
	if (sscanf(reply.data, "deleted=%lu", &n) != 1)
		keyctl_die("cables-keyd: unexpected reply to a delete: %.*s", (int)strcspn(reply.data, "\n"), reply.data);
	buf_release(&req);
	buf_release(&reply);
	*deleted = (size_t)n;
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
	buf_appends(&req, "request=list\n");
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
