/*
 * fuzz_hp - the header protection reader (lib/hp.c) and the padding
 * recogniser (lib/pad.c) on hostile decrypted content.
 *
 * Input: the outer header section, a line "--", then the decrypted entity
 * (padding field, payload header, body); without that line, all of it is
 * the entity and the outer header is empty.  The first byte picks the
 * hp_restore flags.  Whatever the input, a plan must keep to its bounds,
 * and every value it would write into a header must be one field: no NUL,
 * no CR but in CRLF, no line break but before a blank, no line of blanks
 * only; legacy display cuts are ascending ranges of the body.  The outer
 * section also goes through hp_protect with each policy, under the same
 * rule.  hp_restore_identity (bit 2 of the first byte: every address is a
 * signer's) leaves no edit of a field it kept outside, and signs nothing
 * unsigned.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hp.h"
#include "mime.h"
#include "pad.h"
#include "util.h"

/* Every address is a signer's when the input's first byte has bit 2 set, none otherwise. */
static bool
fuzz_vouch(void *arg, const char *addr)
{
	(void)addr;
	return arg != NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_init();
	return 0;
}

/* One field's worth of value: what a header write must never be handed otherwise. */
static void
check_value(const char *v)
{
	size_t n;

	if (v == NULL)
		abort();
	n = strlen(v);
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r' && v[i + 1] != '\n')
			abort();
		if (v[i] == '\n') {
			size_t j = i + 1;

			if (v[j] != ' ' && v[j] != '\t')
				abort();
			while (v[j] == ' ' || v[j] == '\t')
				j++;
			if (v[j] == '\r' || v[j] == '\n' || v[j] == '\0')
				abort();
		}
	}
}

static void
check_edits(const struct hp_edits *e)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct hp_edit *d = &e->v[i];

		if (d->name == NULL || d->name[0] == '\0' || strpbrk(d->name, ": \t\r\n") != NULL)
			abort();
		if (d->op == HP_OP_DELETE) {
			if (d->value != NULL || d->index == 0)
				abort();
			continue;
		}
		check_value(d->value);
		if (d->op == HP_OP_SET && d->index == 0)
			abort();
	}
}

/* The boundary of the entity's first Content-Type, or NULL. */
static char *
boundary_of(const char *entity, size_t n)
{
	struct mime_field f;
	size_t off = 0;

	while (mime_field_next(entity, n, &off, &f) == 1)
		if (f.name_len == 12 && str_nieq(f.name, "Content-Type", 12)) {
			char *v = xstrndup(f.value, f.value_len), *b = mime_type_param(v, "boundary");

			free(v);
			return b;
		}
	return NULL;
}

static void
body_cuts(const char *body, size_t n, const char *boundary)
{
	size_t from, to, cut;

	cut = hp_legacy_strip_text(body, n);
	if (cut > n)
		abort();
	if (hp_legacy_strip_html(body, n, &from, &to) && (from > to || to > n))
		abort();
	if (hp_legacy_html_offset(body, n) > n)
		abort();
	if (boundary != NULL && hp_legacy_strip_v1(body, n, boundary, &from, &to) &&
	    (from >= to || to + 2 > n || memcmp(body + to, "--", 2) != 0))
		abort();
}

/* Insertions of legacy display elements into the entity's body: ascending, within it. */
static void
inserts(const char *entity, size_t len, const struct buf *legacy)
{
	struct hp_insert ins[HP_INSERTS_MAX];
	struct mime_field f;
	size_t off = 0, n, at = 0;
	char *ct = NULL, *cte = NULL;
	bool top;

	while (mime_field_next(entity, len, &off, &f) == 1) {
		if (ct == NULL && f.name_len == 12 && str_nieq(f.name, "Content-Type", 12))
			ct = xstrndup(f.value, f.value_len);
		else if (cte == NULL && f.name_len == 25 && str_nieq(f.name, "Content-Transfer-Encoding", 25))
			cte = xstrndup(f.value, f.value_len);
	}
	n = hp_legacy_inserts(entity + off, len - off, ct, cte, NULL, legacy, &top, ins, HP_INSERTS_MAX);
	if (n > HP_INSERTS_MAX || (top && n != 1))
		abort();
	for (size_t i = 0; i < n; i++) {
		if (ins[i].at < at || ins[i].at > len - off || ins[i].text.len == 0)
			abort();
		at = ins[i].at;
	}
	hp_inserts_release(ins, n);
	free(ct);
	free(cte);
}

static void
protect_all(const char *outer, size_t n, const char *entity, size_t len)
{
	for (int pol = HP_POLICY_NONE; pol <= HP_POLICY_SHY; pol++) {
		struct hp_protect p;

		if (hp_protect(outer, n, (enum hp_policy)pol, &p, NULL) == CABLES_OK) {
			if (pol == HP_POLICY_BASELINE)
				inserts(entity, len, &p.legacy);
			check_edits(&p.outer);
			/* The protected copy is whole fields: it never holds an empty line. */
			if (p.inner.len > 0 && (strstr(p.inner.data, "\r\n\r\n") != NULL || p.inner.data[0] == '\r'))
				abort();
		}
		hp_protect_release(&p);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *sep;
	const char *outer = "", *entity = p;
	size_t outer_len = 0, entity_len = size, pad;
	unsigned int flags = size > 0 ? data[0] & 3 : 0;
	struct hp_restore r;
	struct cables_err err;

	sep = size >= 4 ? memmem(p, size, "\n--\n", 4) : NULL;
	if (sep != NULL) {
		outer = p;
		outer_len = (size_t)(sep - p) + 1;
		entity = sep + 4;
		entity_len = size - (size_t)(entity - p);
	}
	pad = pad_strip(entity, entity_len);
	if (pad > entity_len)
		abort();
	entity += pad;
	entity_len -= pad;
	if (hp_restore(entity, entity_len, outer, outer_len, flags, &r, &err) == CABLES_OK) {
		struct addr_opts exact = { false, "" };
		struct hp_vouch v = { &exact, fuzz_vouch, (void *)(uintptr_t)(size > 0 && (data[0] & 4)) };
		struct hp_identities id;

		if (r.body_off > entity_len)
			abort();
		check_edits(&r.outer);
		/* Identities: a field kept outside has no edit left; what stays still obeys the rule. */
		hp_restore_identity(&r, outer, outer_len, &v, &id);
		check_edits(&r.outer);
		for (size_t i = 0; i < r.outer.n; i++)
			if ((id.from == HP_IDENTITY_KEPT && str_ieq(r.outer.v[i].name, "From")) ||
			    (id.sender == HP_IDENTITY_KEPT && str_ieq(r.outer.v[i].name, "Sender")))
				abort();
		if ((id.from == HP_IDENTITY_SIGNED || id.sender == HP_IDENTITY_SIGNED) && !(size > 0 && (data[0] & 4)))
			abort();
		if (r.legacy != HP_LEGACY_NONE && (r.scheme == HP_SCHEME_NONE || (flags & HP_SIGNED)))
			abort();
		char *boundary = boundary_of(entity, entity_len);
		struct hp_cut cuts[HP_CUTS_MAX];
		size_t ncuts = hp_legacy_cuts(entity, entity_len, &r, cuts, HP_CUTS_MAX), at = r.body_off;

		/* Ranges of the body, ascending and disjoint. */
		if (ncuts > HP_CUTS_MAX)
			abort();
		for (size_t i = 0; i < ncuts; i++) {
			if (cuts[i].from < at || cuts[i].to <= cuts[i].from || cuts[i].to > entity_len)
				abort();
			at = cuts[i].to;
		}

		body_cuts(entity + r.body_off, entity_len - r.body_off, boundary);
		free(boundary);
	} else if (err.msg[0] == '\0') {
		abort();	/* a failure always says why */
	}
	hp_restore_release(&r);
	protect_all(outer, outer_len, entity, entity_len);
	return 0;
}
