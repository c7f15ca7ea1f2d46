/*
 * hp_identity - which protected From and Sender may replace the outer ones
 * (hp_restore_identity); see hp.h for the rule and why.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "hp.h"
#include "hp_private.h"
#include "mime.h"
#include "util.h"

const char *
hp_identity_name(enum hp_identity i)
{
	switch (i) {
	case HP_IDENTITY_SAME:
		return "same";
	case HP_IDENTITY_SIGNED:
		return "signed";
	case HP_IDENTITY_KEPT:
		return "kept-outer";
	default:
		return "none";
	}
}

/* A list of addresses in one normal form. */
struct addrs {
	char **v;
	size_t n;
	bool bad;		/* an address could not be normalised, or a value named none */
};

static void
addrs_release(struct addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static bool
addrs_has(const struct addrs *a, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], addr) == 0)
			return true;
	return false;
}

/* Add the mailboxes of one field value (raw, folded) to a. */
static void
addrs_add_value(struct addrs *a, const char *v, size_t len, const struct addr_opts *opts)
{
	char *flat = hp_value_flat(v, len), **found;
	size_t n = mime_addresses(flat, &found);

	if (n == 0)
		a->bad = true;
	for (size_t i = 0; i < n; i++) {
		char *norm = addr_valid(found[i]) ? addr_normalize(found[i], opts) : NULL;

		if (norm == NULL) {
			a->bad = true;
		} else {
			a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
			a->v[a->n++] = norm;
		}
		free(found[i]);
	}
	free(found);
	free(flat);
}

/* Remove every edit of name from e (the outer fields of that name then stay as they came). */
static void
drop_edits(struct hp_edits *e, const char *name)
{
	size_t w = 0;

	for (size_t i = 0; i < e->n; i++) {
		if (str_ieq(e->v[i].name, name)) {
			free(e->v[i].name);
			free(e->v[i].value);
			continue;
		}
		e->v[w++] = e->v[i];
	}
	e->n = w;
}

/*
 * Write the field's values as they were parsed: the addresses compared
 * above are then the ones a client shows, whatever its own parser would
 * have made of an odd value (comments, routes, quoted '@' in names).
 */
static void
canonical_values(struct hp_edits *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++) {
		char *flat, *c;

		if (e->v[i].op == HP_OP_DELETE || !str_ieq(e->v[i].name, name))
			continue;
		flat = hp_value_flat(e->v[i].value, strlen(e->v[i].value));
		c = mime_addresses_canonical(flat);
		free(flat);
		if (c == NULL)
			continue;	/* not reached: a value without a mailbox was kept outside */
		for (char *q = c; *q != '\0'; q++)
			if (*q == '\r' || *q == '\n')
				*q = ' ';	/* one line: folding is the MTA's business */
		free(e->v[i].value);
		e->v[i].value = xasprintf(" %s", c);
		free(c);
	}
}

/* Judge the protected field name against the outer ones; drop its edits when kept. */
static enum hp_identity
judge(struct hp_restore *r, const struct fields *outer, const char *name, const struct hp_vouch *v,
    char *claimed, size_t claimed_len)
{
	struct addrs in = { NULL, 0, false }, out = { NULL, 0, false };
	enum hp_identity verdict = HP_IDENTITY_SAME;
	bool any = false;

	for (size_t i = 0; i < r->outer.n; i++) {
		const struct hp_edit *d = &r->outer.v[i];

		if (d->op == HP_OP_DELETE || !str_ieq(d->name, name))
			continue;
		any = true;
		addrs_add_value(&in, d->value, strlen(d->value), v->opts);
	}
	if (!any) {
		addrs_release(&in);
		return HP_IDENTITY_NONE;
	}
	/*
	 * What the world saw: the outer field, and for Sender the outer From
	 * too (a Sender naming the From the edge checked adds no one).  Never
	 * the outer Sender for From: nothing checked it.
	 */
	for (size_t i = 0; i < outer->n; i++)
		if (hp_name_is(outer->v[i].name, outer->v[i].name_len, name) ||
		    (strcmp(name, "Sender") == 0 && hp_name_is(outer->v[i].name, outer->v[i].name_len, "From")))
			addrs_add_value(&out, outer->v[i].value, outer->v[i].value_len, v->opts);
	if (in.bad) {
		/* Nothing to vouch for: no address, or one we cannot read the way a client might. */
		verdict = HP_IDENTITY_KEPT;
		if (claimed[0] == '\0')
			snprintf(claimed, claimed_len, "%s", in.n > 0 ? in.v[0] : "(no address)");
	}
	for (size_t i = 0; i < in.n && verdict != HP_IDENTITY_KEPT; i++) {
		if (addrs_has(&out, in.v[i]))
			continue;
		if (v->signed_by == NULL || !v->signed_by(v->arg, in.v[i])) {
			verdict = HP_IDENTITY_KEPT;
			if (claimed[0] == '\0')
				snprintf(claimed, claimed_len, "%s", in.v[i]);
		} else {
			verdict = HP_IDENTITY_SIGNED;
		}
	}
	if (verdict == HP_IDENTITY_KEPT)
		drop_edits(&r->outer, name);
	else
		canonical_values(&r->outer, name);
	addrs_release(&in);
	addrs_release(&out);
	return verdict;
}

void
hp_restore_identity(struct hp_restore *r, const char *outer, size_t outer_len, const struct hp_vouch *v,
    struct hp_identities *out)
{
	struct fields of;
	struct cables_err err;

	memset(out, 0, sizeof(*out));
	/*
	 * The outer section was parsed by hp_restore already; should it fail
	 * now, no outer address is known and every protected one must be signed.
	 */
	if (hp_fields_parse(outer, outer_len, false, &of, &err) != CABLES_OK) {
		hp_fields_release(&of);
		memset(&of, 0, sizeof(of));
	}
	out->from = judge(r, &of, "From", v, out->claimed, sizeof(out->claimed));
	out->sender = judge(r, &of, "Sender", v, out->claimed, sizeof(out->claimed));
	hp_fields_release(&of);
}
