/* restore - padding cut and protected header fields restored on decrypted mail; see restore.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mime.h"
#include "pad.h"
#include "protect.h"
#include "restore.h"

#define PAD_SCAN (2 * 1024 * 1024)	/* plaintext bytes pad_strip() looks at: any field below 1 MiB, and more */
#define HEAD_SCAN (256 * 1024)		/* an entity's header section */
#define LEGACY_SCAN (64 * 1024)		/* body bytes where a legacy display element can be */

/* The entity's own content fields (from head[0..len)) as CRLF lines. */
static void
content_fields(const char *head, size_t len, struct buf *out)
{
	struct mime_field f;
	size_t off = 0;

	while (mime_field_next(head, len, &off, &f) == 1)
		if (mime_is_content_header(f.name, f.name_len))
			buf_printf(out, "%.*s:%.*s\r\n", (int)f.name_len, f.name, (int)f.value_len, f.value);
}

/* The first Content-Type value of head[0..len), or NULL (malloc'd). */
static char *
content_type_of(const char *head, size_t len, size_t *body_off)
{
	struct mime_field f;
	size_t off = 0;
	char *ct = NULL;

	while (mime_field_next(head, len, &off, &f) == 1)
		if (ct == NULL && f.name_len == 12 && str_nieq(f.name, "Content-Type", 12))
			ct = xstrndup(f.value, f.value_len);
	*body_off = off;
	return ct;
}

static void
wipe(struct buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->len);
	buf_release(b);
}

cables_status
restore_plan(struct restore *rs, const struct message *m, const struct spool *plain, struct cables_err *err)
{
	struct buf first, payload, outer;
	struct mime_type t;
	struct cables_err why;
	size_t off;
	off_t start[2], end[2];
	const char *p;
	char *ct;
	cables_status st;

	memset(rs, 0, sizeof(*rs));
	buf_init(&rs->entity_content);
	buf_init(&first);
	buf_init(&payload);
	buf_init(&outer);
	if ((st = spool_read_buf(plain, 0, PAD_SCAN, &first, err)) != CABLES_OK)
		goto out;
	p = first.data != NULL ? first.data : "";
	rs->from = (off_t)pad_strip(p, first.len);
	ct = content_type_of(p + rs->from, first.len - (size_t)rs->from, &off);
	rs->body_off = rs->from + (off_t)off;
	content_fields(p + rs->from, off, &rs->entity_content);
	rs->payload_off = rs->from;
	mime_type_parse(ct, &t);
	if (mime_type_is(&t, "multipart", "signed") && t.boundary != NULL) {
		/* The payload is the signed part; an entity that is not two parts is delivered as it is. */
		rs->is_signed = true;
		if (mime_signed_parts(plain, rs->body_off, -1, t.boundary, start, end, &why) != CABLES_OK) {
			snprintf(rs->why, sizeof(rs->why), "%s", why.msg);
			mime_type_release(&t);
			free(ct);
			goto out;
		}
		rs->payload_off = start[0];
	}
	mime_type_release(&t);
	free(ct);
	if ((st = spool_read_buf(plain, rs->payload_off, HEAD_SCAN + LEGACY_SCAN, &payload, err)) != CABLES_OK)
		goto out;
	if (spool_size(m->headers) > HP_HEAD_MAX) {
		snprintf(rs->why, sizeof(rs->why), "the outer header section is over %d bytes", HP_HEAD_MAX);
		goto out;
	}
	if ((st = spool_read_buf(m->headers, 0, HP_HEAD_MAX, &outer, err)) != CABLES_OK)
		goto out;
	if (hp_restore(payload.data != NULL ? payload.data : "", payload.len, outer.data != NULL ? outer.data : "",
	    outer.len, HP_IN_ENCRYPTION | (rs->is_signed ? HP_SIGNED : 0), &rs->r, &why) != CABLES_OK) {
		snprintf(rs->why, sizeof(rs->why), "%s", why.msg);
		hp_restore_release(&rs->r);
		memset(&rs->r, 0, sizeof(rs->r));
		goto out;
	}
	rs->planned = true;
	if (rs->r.legacy != HP_LEGACY_NONE)
		rs->ncuts = hp_legacy_cuts(payload.data, payload.len, &rs->r, rs->cuts, HP_CUTS_MAX);
	for (size_t i = 0; i < rs->ncuts; i++) {
		rs->cuts[i].from += (size_t)rs->payload_off;
		rs->cuts[i].to += (size_t)rs->payload_off;
	}
out:
	wipe(&first);
	wipe(&payload);
	buf_release(&outer);
	return st;
}

const char *
restore_protected_from(const struct restore *rs)
{
	if (!rs->planned)
		return NULL;
	for (size_t i = 0; i < rs->r.outer.n; i++)
		if (rs->r.outer.v[i].op != HP_OP_DELETE && str_ieq(rs->r.outer.v[i].name, "From"))
			return rs->r.outer.v[i].value;
	return NULL;
}

bool
restore_names(const struct restore *rs, const char *addr, const struct addr_opts *o)
{
	/*
	 * A restoration that failed cannot say whom the payload addressed, and
	 * the sender chooses the outer header that makes it fail (too many
	 * fields): fail closed, as for a payload addressed to others.
	 */
	if (rs->why[0] != '\0')
		return false;
	return !rs->planned || hp_restore_names(&rs->r, addr, o);
}

void
restore_names_each(const struct restore *rs, const char *const *addr, size_t n, const struct addr_opts *o,
    bool *named)
{
	if (rs->why[0] != '\0' || !rs->planned) {
		for (size_t j = 0; j < n; j++)
			named[j] = rs->why[0] == '\0';
		return;
	}
	hp_restore_names_each(&rs->r, addr, n, o, named);
}

cables_status
restore_identity(struct restore *rs, const struct message *m, const struct hp_vouch *v, struct cables_err *err)
{
	static const struct addr_opts exact = { false, "" };
	struct hp_vouch nobody = { &exact, NULL, NULL };
	struct buf outer;
	cables_status st;

	if (!rs->planned || rs->identity_decided)
		return CABLES_OK;
	buf_init(&outer);
	if ((st = spool_read_buf(m->headers, 0, HP_HEAD_MAX, &outer, err)) == CABLES_OK) {
		hp_restore_identity(&rs->r, outer.data != NULL ? outer.data : "", outer.len, v != NULL ? v : &nobody,
		    &rs->id);
		rs->identity_decided = true;
	}
	buf_release(&outer);
	return st;
}

/* Restored unsigned: the payload's content fields without the hp parameters, its body with the cuts. */
static bool
rewritten(const struct restore *rs)
{
	return rs->planned && !rs->is_signed && rs->r.scheme != HP_SCHEME_NONE;
}

/* The content fields the delivered message gets. */
static const struct buf *
delivered_content(const struct restore *rs)
{
	return rewritten(rs) ? &rs->r.content : &rs->entity_content;
}

/* The body's first byte in the plaintext. */
static off_t
delivered_body(const struct restore *rs)
{
	return rewritten(rs) ? rs->payload_off + (off_t)rs->r.body_off : rs->body_off;
}

int
restore_apply(struct restore *rs, const struct message *m, const struct mta *mta, const struct spool *plain)
{
	const struct buf *content = delivered_content(rs);
	bool outer_mime_version = message_header_value(m, "MIME-Version") != NULL;
	struct mime_field f;
	struct cables_err err;
	size_t off = 0, i;
	off_t at = delivered_body(rs);

	/* Undecided identities stay outside (fail closed). */
	if (restore_identity(rs, m, NULL, &err) != CABLES_OK)
		return -1;

	/* Remove the outer content fields (the encryption's wrapper), keeping MIME-Version. */
	for (i = m->ncontent; i > 0; i--) {
		const struct header *h = &m->content[i - 1];

		if (!str_ieq(h->name, "MIME-Version") && mta->chgheader(mta->ctx, h->name, (int)h->index, NULL) != 0)
			return -1;
	}
	while (mime_field_next(content->data != NULL ? content->data : "", content->len, &off, &f) == 1) {
		char *name = xstrndup(f.name, f.name_len), *raw = xstrndup(f.value, f.value_len);
		char *v = mta_value(mta, raw);
		int rc = 0;

		if (!str_ieq(name, "MIME-Version") || !outer_mime_version)
			rc = mta->addheader(mta->ctx, name, v);
		free(name);
		free(raw);
		free(v);
		if (rc != 0)
			return -1;
	}
	if (rs->planned && protect_edits_apply(&rs->r.outer, mta) != 0)
		return -1;
	for (i = 0; rewritten(rs) && i < rs->ncuts; i++) {
		if ((off_t)rs->cuts[i].from > at && mta_replace_body(mta, plain, at, (off_t)rs->cuts[i].from) != 0)
			return -1;
		at = (off_t)rs->cuts[i].to;
	}
	return mta_replace_body(mta, plain, at, (off_t)spool_size(plain));
}

cables_status
restore_copy(struct restore *rs, const struct message *m, const struct spool *plain, const char *tmpdir,
    struct buf *content, struct entity_src *body, struct spool **headers, struct cables_err *err)
{
	const struct buf *c = delivered_content(rs);
	struct buf outer, edited;
	struct mime_field f;
	size_t off = 0, i;
	off_t at = delivered_body(rs);
	cables_status st = CABLES_OK;

	*headers = NULL;
	/* Undecided identities stay outside (fail closed). */
	if ((st = restore_identity(rs, m, NULL, err)) != CABLES_OK)
		return st;
	buf_appends(content, "MIME-Version: 1.0\r\n");
	while (mime_field_next(c->data != NULL ? c->data : "", c->len, &off, &f) == 1)
		if (!(f.name_len == 12 && str_nieq(f.name, "MIME-Version", 12)))
			buf_printf(content, "%.*s:%.*s\r\n", (int)f.name_len, f.name, (int)f.value_len, f.value);
	entity_src_init(body);
	for (i = 0; rewritten(rs) && i < rs->ncuts; i++) {
		if ((off_t)rs->cuts[i].from > at)
			entity_src_spool(body, plain, at, (off_t)rs->cuts[i].from);
		at = (off_t)rs->cuts[i].to;
	}
	entity_src_spool(body, plain, at, -1);
	if (!rs->planned || rs->r.outer.n == 0)
		return CABLES_OK;
	buf_init(&outer);
	buf_init(&edited);
	if ((st = spool_read_buf(m->headers, 0, HP_HEAD_MAX, &outer, err)) == CABLES_OK &&
	    (st = hp_edits_apply(outer.data != NULL ? outer.data : "", outer.len, &rs->r.outer, &edited, err)) ==
	    CABLES_OK) {
		*headers = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
		if ((st = spool_append(*headers, edited.data, edited.len, err)) != CABLES_OK) {
			spool_free(*headers);
			*headers = NULL;
		}
	}
	buf_release(&outer);
	buf_release(&edited);
	return st;
}

void
restore_note(const struct restore *rs, struct buf *log)
{
	if (rs->from > 0)
		buf_printf(log, " pad=cut");
	if (rs->why[0] != '\0')
		buf_printf(log, " hp=not-restored (%s)", rs->why);
	else if (rs->planned && rs->r.scheme != HP_SCHEME_NONE)
		buf_printf(log, " hp=%s restored=%zu refused=%u%s", hp_scheme_name(rs->r.scheme), rs->r.outer.n,
		    rs->r.refused, rs->ncuts > 0 && rewritten(rs) ? " legacy=cut" : "");
	if (rs->id.from == HP_IDENTITY_KEPT || rs->id.sender == HP_IDENTITY_KEPT)
		buf_printf(log, " identity=kept-outer (protected %s%s%s %s is not signed by that address)",
		    rs->id.from == HP_IDENTITY_KEPT ? "From" : "",
		    rs->id.from == HP_IDENTITY_KEPT && rs->id.sender == HP_IDENTITY_KEPT ? "/" : "",
		    rs->id.sender == HP_IDENTITY_KEPT ? "Sender" : "", rs->id.claimed);
	else if (rs->id.from == HP_IDENTITY_SIGNED || rs->id.sender == HP_IDENTITY_SIGNED)
		buf_printf(log, " identity=signed");
}

void
restore_release(struct restore *rs)
{
	hp_restore_release(&rs->r);
	buf_release(&rs->entity_content);
}
