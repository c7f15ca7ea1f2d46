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

/*
 * Is v (unfolded) one mailbox beyond doubt?  Exactly one '@' and no ','
 * or ';' outside quoted strings, every quote and comment closed: no
 * second address, route or group that one client's parser could read and
 * another's skip.  '@' inside a comment counts: a comment is no place for
 * an address either.
 */
static bool
plainly_one(const char *v)
{
	size_t at = 0, depth = 0;
	bool quoted = false;

	for (const char *p = v; *p != '\0'; p++) {
		if ((quoted || depth > 0) && *p == '\\') {
			if (*++p == '\0')
				return false;
		} else if (quoted) {
			quoted = *p != '"';
		} else if (*p == '(') {
			depth++;
		} else if (depth > 0 && *p == ')') {
			depth--;
		} else if (*p == '@') {
			at++;
		} else if (depth == 0 && *p == '"') {
			quoted = true;
		} else if (depth == 0 && (*p == ',' || *p == ';' || *p == ')')) {
			return false;
		}
	}
	return at == 1 && !quoted && depth == 0;
}

/*
 * Add the one mailbox the outer field name says to a, if it says one:
 * exactly one such field, whose value is plainly one mailbox
 * (plainly_one), that parses to one address, and whose canonical form
 * parses back to that address.  On any doubt nothing is added, so that
 * every protected address needs a signature.
 */
static void
addrs_add_outer(struct addrs *a, const struct fields *outer, const char *name, const struct addr_opts *opts)
{
	const struct field *f = NULL;
	struct addrs one = { NULL, 0, false };
	char *flat, *canon = NULL, **first = NULL, **again = NULL;
	size_t nfirst = 0, nagain = 0;

	for (size_t i = 0; i < outer->n; i++) {
		if (!hp_name_is(outer->v[i].name, outer->v[i].name_len, name))
			continue;
		if (f != NULL)
			return;
		f = &outer->v[i];
	}
	if (f == NULL)
		return;
	flat = hp_value_flat(f->value, f->value_len);
	if (plainly_one(flat) && (nfirst = mime_addresses(flat, &first)) == 1 &&
	    (canon = mime_addresses_canonical(flat)) != NULL && (nagain = mime_addresses(canon, &again)) == 1 &&
	    strcmp(first[0], again[0]) == 0) {
		addrs_add_value(&one, f->value, f->value_len, opts);
		if (!one.bad && one.n == 1) {
			a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
			a->v[a->n++] = one.v[0];
			one.v[0] = NULL;
			one.n = 0;
		}
	}
	for (size_t i = 0; i < nfirst; i++)
		free(first[i]);
	for (size_t i = 0; i < nagain; i++)
		free(again[i]);
	free(first);
	free(again);
	free(canon);
	free(flat);
	addrs_release(&one);
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

#define FOLD_AT 78	/* RFC 5322 2.1.1: lines should be no longer */

/*
 * " " and the address list c (one line), folded after a comma outside
 * quoted strings with CRLF TAB wherever the line, which starts with
 * "name:", would pass FOLD_AT characters.  A single mailbox longer than
 * that stays whole.
 */
static char *
folded_list(const char *name, const char *c)
{
	struct buf out;
	size_t col = strlen(name) + 1, len;
	bool quoted = false;
	const char *start = c, *p;
	char *v;

	buf_init(&out);
	for (p = c;; p++) {
		if (quoted && *p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		if (*p != '\0' && (quoted || *p != ','))
			continue;
		len = (size_t)(p - start);
		if (start == c) {
			buf_append(&out, " ", 1);
			col += 1 + len;
		} else if (col + 2 + len > FOLD_AT) {
			buf_append(&out, ",\r\n\t", 4);
			col = 1 + len;
		} else {
			buf_append(&out, ", ", 2);
			col += 2 + len;
		}
		buf_append(&out, start, len);
		if (*p == '\0')
			break;
		start = p + 1;
		while (*start == ' ' || *start == '\t')
			start++;
		p = start - 1;
	}
	v = xstrndup(out.data, out.len);
	buf_release(&out);
	return v;
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
				*q = ' ';	/* one line, folded below where we choose */
		free(e->v[i].value);
		e->v[i].value = folded_list(name, c);
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
	 * the outer Sender for From: nothing checked it.  Each only when it
	 * names one mailbox beyond doubt (addrs_add_outer): a protected From
	 * picking one of several outer mailboxes or fields, or the address a
	 * lenient parse made of an odd value, is a new address.
	 */
	addrs_add_outer(&out, outer, name, v->opts);
	if (strcmp(name, "Sender") == 0)
		addrs_add_outer(&out, outer, "From", v->opts);
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

void
hp_restore_names_each(const struct hp_restore *r, const char *const *addr, size_t naddr, const struct addr_opts *o,
    bool *named)
{
	bool any = false;

	for (size_t j = 0; j < naddr; j++)
		named[j] = r->scheme == HP_SCHEME_NONE;
	if (r->scheme == HP_SCHEME_NONE)
		return;
	/* The protected To and Cc are read once for all the addresses (a sender chooses how many of each). */
	for (size_t i = 0; i < r->outer.n; i++) {
		const struct hp_edit *e = &r->outer.v[i];
		char **addrs, *flat;
		size_t n;

		if (e->op == HP_OP_DELETE || (!str_ieq(e->name, "To") && !str_ieq(e->name, "Cc")))
			continue;
		any = true;
		flat = hp_value_flat(e->value, strlen(e->value));
		n = mime_addresses(flat, &addrs);
		for (size_t k = 0; k < n; k++) {
			char *norm = addr_normalize(addrs[k], o);

			for (size_t j = 0; norm != NULL && j < naddr; j++)
				named[j] = named[j] || strcmp(norm, addr[j]) == 0;
			free(norm);
			free(addrs[k]);
		}
		free(addrs);
		free(flat);
	}
	if (!any && r->scheme == HP_SCHEME_V1)
		for (size_t j = 0; j < naddr; j++)
			named[j] = true;
}

bool
hp_restore_names(const struct hp_restore *r, const char *addr, const struct addr_opts *o)
{
	bool named;

	hp_restore_names_each(r, &addr, 1, o, &named);
	return named;
}
