/* hp - header protection (RFC 9788) plans, both ways; see hp.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "hp.h"
#include "hp_private.h"
#include "mime.h"
#include "util.h"

static const char *const policy_words[] = { "none", "baseline", "shy", "off" };

const char *
hp_policy_name(enum hp_policy p)
{
	return (unsigned int)p < 4 ? policy_words[p] : "?";
}

bool
hp_policy_parse(const char *word, enum hp_policy *p)
{
	for (int i = 0; i < 4; i++)
		if (str_ieq(word, policy_words[i])) {
			*p = (enum hp_policy)i;
			return true;
		}
	return false;
}

const char *
hp_scheme_name(enum hp_scheme s)
{
	switch (s) {
	case HP_SCHEME_RFC9788:
		return "rfc9788";
	case HP_SCHEME_V1:
		return "protected-headers-v1";
	default:
		return "none";
	}
}

/* ---- field classes ---- */

/* Trace and transport fields: what MTAs, filters and list servers write on the way. */
static const char *const transport_names[] = {
	"Received", "Return-Path", "DKIM-Signature", "Authentication-Results", "ARC-Seal",
	"ARC-Message-Signature", "ARC-Authentication-Results", "Received-SPF", "Delivered-To",
	"X-Original-To", "Bcc", "HP-Outer", NULL
};

/* Addressing and threading (RFC 9787's user-facing fields and the thread links). */
static const char *const user_names[] = {
	"Subject", "From", "Sender", "Reply-To", "To", "Cc", "Date", "Followup-To", "Mail-Followup-To",
	"Message-ID", "In-Reply-To", "References", NULL
};

/* The fields a legacy display shows when the policy hid them, in this order. */
static const char *const display_names[] = {
	"Subject", "From", "Sender", "Reply-To", "To", "Cc", "Date", "Followup-To", NULL
};

static bool
name_in(const char *name, size_t len, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strlen(list[i]) == len && str_nieq(name, list[i], len))
			return true;
	return false;
}

bool
hp_name_is(const char *name, size_t len, const char *what)
{
	return strlen(what) == len && str_nieq(name, what, len);
}

enum hp_class
hp_field_class(const char *name, size_t len)
{
	if (mime_is_content_header(name, len))
		return HP_CLASS_STRUCTURAL;
	if (name_in(name, len, transport_names) || (len >= 7 && str_nieq(name, "Resent-", 7)) ||
	    (len >= 8 && str_nieq(name, "X-Cables", 8)))
		return HP_CLASS_TRANSPORT;
	if (name_in(name, len, user_names))
		return HP_CLASS_USER;
	return HP_CLASS_OTHER;
}

/* ---- parsing ---- */


void
hp_fields_release(struct fields *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/*
 * A value must not carry what could end the field or the header section
 * once it is written elsewhere: NUL and other controls, a CR that does not
 * start a line break, a continuation line of blanks only.
 */
static cables_status
check_value(const struct field *f, struct cables_err *err)
{
	const unsigned char *v = (const unsigned char *)f->value;
	size_t n = f->value_len;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r' && (i + 1 >= n || v[i + 1] != '\n'))
			return cables_fail(err, CABLES_ERR_SYNTAX, "header field '%.*s' has a bare CR",
			    (int)f->name_len, f->name);
		if (v[i] == '\n') {
			size_t j = i + 1;

			while (j < n && (v[j] == ' ' || v[j] == '\t'))
				j++;
			if (j >= n || v[j] == '\r' || v[j] == '\n')
				return cables_fail(err, CABLES_ERR_SYNTAX,
				    "header field '%.*s' has a continuation line of blanks only",
				    (int)f->name_len, f->name);
			continue;
		}
		if ((v[i] < 32 && v[i] != '\t' && v[i] != '\r') || v[i] == 127)
			return cables_fail(err, CABLES_ERR_SYNTAX, "header field '%.*s' has control character 0x%02x",
			    (int)f->name_len, f->name, v[i]);
	}
	return CABLES_OK;
}

static unsigned int
count_name(const struct fields *fs, size_t upto, const char *name, size_t len)
{
	unsigned int c = 0;

	for (size_t i = 0; i < upto; i++)
		if (fs->v[i].name_len == len && str_nieq(fs->v[i].name, name, len))
			c++;
	return c;
}

/* Parse a header section; check values when strict. */
cables_status
hp_fields_parse(const char *p, size_t len, bool strict, struct fields *out, struct cables_err *err)
{
	struct mime_field mf;
	size_t off = 0, cap = 0, fend = 0;
	cables_status st;

	memset(out, 0, sizeof(*out));
	if (len > HP_HEAD_MAX)
		len = HP_HEAD_MAX + 1;	/* enough to see that the section does not end in time */
	while (mime_field_next(p, len, &off, &mf) == 1) {
		struct field *f;

		if (off > HP_HEAD_MAX)
			return cables_fail(err, CABLES_ERR_TOOBIG, "header section exceeds %d bytes", HP_HEAD_MAX);
		if (out->n >= HP_FIELDS_MAX)
			return cables_fail(err, CABLES_ERR_TOOBIG, "header section has more than %d fields",
			    HP_FIELDS_MAX);
		if (out->n == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			out->v = xreallocarray(out->v, cap, sizeof(*out->v));
		}
		f = &out->v[out->n];
		f->name = mf.name;
		f->name_len = mf.name_len;
		f->value = mf.value;
		f->value_len = mf.value_len;
		f->index = count_name(out, out->n, mf.name, mf.name_len) + 1;
		if (strict && (st = check_value(f, err)) != CABLES_OK)
			return st;
		out->n++;
		fend = off;
	}
	if (off > HP_HEAD_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "header section exceeds %d bytes", HP_HEAD_MAX);
	out->end = off;
	/* mime_field_next() moves past the empty line that ends a section, and only past that. */
	out->blank = off > fend;
	return CABLES_OK;
}

/* A value as it is written out: folds as CRLF, starting with a blank. */
static void
append_value(struct buf *b, const char *v, size_t n)
{
	if (n == 0 || (v[0] != ' ' && v[0] != '\t'))
		buf_append(b, " ", 1);
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\r')
			continue;
		if (v[i] == '\n')
			buf_append(b, "\r\n", 2);
		else
			buf_append(b, &v[i], 1);
	}
}

static char *
value_dup(const char *v, size_t n)
{
	struct buf b;

	buf_init(&b);
	append_value(&b, v, n);
	return b.data;
}

/* The value unfolded and trimmed, for display and parsing. */
char *
hp_value_flat(const char *v, size_t n)
{
	char *s = xmalloc(n + 1), *w = s;

	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			*w++ = v[i];
	*w = '\0';
	str_trim(s);
	return s;
}

/* ---- edits ---- */

static void
edit_add(struct hp_edits *e, enum hp_op op, const char *name, size_t name_len, unsigned int index, char *value)
{
	struct hp_edit *d;

	e->v = xreallocarray(e->v, e->n + 1, sizeof(*e->v));
	d = &e->v[e->n++];
	d->op = op;
	d->name = xstrndup(name, name_len);
	d->index = index;
	d->value = value;
}

void
hp_edits_release(struct hp_edits *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].name);
		free(e->v[i].value);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* ---- the policies ---- */

/* "a@b, c@d": the mailboxes of an address list without display names; NULL if there are none. */
static char *
bare_addresses(const char *flat)
{
	char **addrs;
	size_t n = mime_addresses(flat, &addrs);
	struct buf b;

	if (n == 0) {
		free(addrs);
		return NULL;
	}
	buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "%s%s", i == 0 ? " " : ", ", addrs[i]);
		free(addrs[i]);
	}
	free(addrs);
	return b.data;
}

/* The same instant in UTC; NULL when the date cannot be read. */
static char *
utc_date(const char *flat)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	    "Nov", "Dec" };
	GDateTime *dt = g_mime_utils_header_decode_date(flat), *utc;
	char *out;

	if (dt == NULL)
		return NULL;
	utc = g_date_time_to_utc(dt);
	g_date_time_unref(dt);
	if (utc == NULL)
		return NULL;
	/* English names whatever the locale (RFC 5322 day-name, month-name). */
	out = xasprintf(" %s, %02d %s %04d %02d:%02d:%02d +0000", days[g_date_time_get_day_of_week(utc) % 7],
	    g_date_time_get_day_of_month(utc), months[(g_date_time_get_month(utc) + 11) % 12],
	    g_date_time_get_year(utc), g_date_time_get_hour(utc), g_date_time_get_minute(utc),
	    g_date_time_get_second(utc));
	g_date_time_unref(utc);
	return out;
}

/*
 * Does an address list carry a name beyond its bare addresses: a display
 * name, a group name, or a comment?  Judged on the raw text, not on a
 * parser's reading (GMime drops most comments, and a name written as one
 * would go out as written): outside quoted strings, a '(' or ':' names
 * someone, and so does anything left when blanks and the angle brackets are
 * taken away that is not the bare list.  "<a@b>" names no one: rewriting it
 * would change only its form, and the legacy display would repeat a field
 * the world sees.  A doubt rewrites: the rewritten field hides more.
 */
static bool
names_someone(const char *flat, const char *bare)
{
	struct buf raw, want;
	bool quoted = false, escaped = false, named = false;

	buf_init(&raw);
	buf_init(&want);
	for (const char *p = flat; *p != '\0' && !named; p++) {
		if (quoted) {
			buf_append(&raw, p, 1);
			if (escaped)
				escaped = false;
			else if (*p == '\\')
				escaped = true;
			else if (*p == '"')
				quoted = false;
		} else if (*p == '(' || *p == ':') {
			named = true;
		} else if (*p == '"') {
			quoted = true;
			buf_append(&raw, p, 1);
		} else if (*p != '<' && *p != '>' && *p != ' ' && *p != '\t') {
			buf_append(&raw, p, 1);
		}
	}
	for (const char *p = bare; *p != '\0'; p++)
		if (*p != ' ' && *p != '\t')
			buf_append(&want, p, 1);
	buf_appends(&raw, "");
	buf_appends(&want, "");
	named = named || quoted || strcmp(raw.data, want.data) != 0;
	buf_release(&raw);
	buf_release(&want);
	return named;
}

enum hcp_result { HCP_KEEP, HCP_REPLACE, HCP_REMOVE };

/*
 * The Header Confidentiality Policy for one field: keep it, replace it
 * (*repl set, raw with a leading blank) or remove it from the outside.
 */
static enum hcp_result
hcp(enum hp_policy pol, const struct field *f, char **repl)
{
	char *flat, *v = NULL;

	*repl = NULL;
	if (pol == HP_POLICY_NONE)
		return HCP_KEEP;
	if (hp_name_is(f->name, f->name_len, "Subject")) {
		*repl = xstrdup(" [...]");
		return HCP_REPLACE;
	}
	if (hp_name_is(f->name, f->name_len, "Keywords") || hp_name_is(f->name, f->name_len, "Comments"))
		return HCP_REMOVE;
	if (pol != HP_POLICY_SHY)
		return HCP_KEEP;
	flat = hp_value_flat(f->value, f->value_len);
	if (hp_name_is(f->name, f->name_len, "From") || hp_name_is(f->name, f->name_len, "To") ||
	    hp_name_is(f->name, f->name_len, "Cc"))
		v = bare_addresses(flat);
	else if (hp_name_is(f->name, f->name_len, "Date"))
		v = utc_date(flat);
	/* A group of no one ("Secret Project:;") still names the group. */
	if (v == NULL && (hp_name_is(f->name, f->name_len, "To") || hp_name_is(f->name, f->name_len, "Cc")) &&
	    names_someone(flat, ""))
		v = xstrdup(" undisclosed-recipients:;");
	if (v != NULL && (strcmp(v + 1, flat) == 0 ||
	    (!hp_name_is(f->name, f->name_len, "Date") && !names_someone(flat, v + 1)))) {
		free(v);
		v = NULL;
	}
	free(flat);
	if (v == NULL)
		return HCP_KEEP;
	*repl = v;
	return HCP_REPLACE;
}

/* ---- outbound ---- */

void
hp_protect_release(struct hp_protect *p)
{
	buf_release(&p->inner);
	buf_release(&p->legacy);
	hp_edits_release(&p->outer);
}

static void
append_field(struct buf *b, const char *name, size_t name_len, const char *raw_value)
{
	buf_append(b, name, name_len);
	buf_append(b, ":", 1);
	buf_appends(b, raw_value);
	buf_append(b, "\r\n", 2);
}

/* The legacy display lines: hidden user-facing fields in display order, original values. */
static void
legacy_lines(const struct fields *fs, const bool *hidden, struct buf *out)
{
	for (size_t k = 0; display_names[k] != NULL; k++)
		for (size_t i = 0; i < fs->n; i++) {
			const struct field *f = &fs->v[i];
			char *flat;

			if (!hidden[i] || !hp_name_is(f->name, f->name_len, display_names[k]))
				continue;
			flat = hp_value_flat(f->value, f->value_len);
			buf_printf(out, "%s: %s\r\n", display_names[k], flat);
			free(flat);
		}
}

cables_status
hp_protect(const char *head, size_t len, enum hp_policy pol, struct hp_protect *out, struct cables_err *err)
{
	struct fields fs;
	struct buf outer_copy;
	struct hp_edits deletes = { NULL, 0 };
	bool *hidden;
	cables_status st;

	memset(out, 0, sizeof(*out));
	buf_init(&out->inner);
	buf_init(&out->legacy);
	if ((st = hp_fields_parse(head, len, true, &fs, err)) != CABLES_OK) {
		hp_fields_release(&fs);
		return st;
	}
	hidden = xcalloc(fs.n + 1, sizeof(*hidden));
	buf_init(&outer_copy);
	for (size_t i = 0; i < fs.n; i++) {
		const struct field *f = &fs.v[i];
		enum hp_class c = hp_field_class(f->name, f->name_len);
		char *raw, *repl;
		enum hcp_result r;

		if (c == HP_CLASS_STRUCTURAL || c == HP_CLASS_TRANSPORT)
			continue;
		raw = value_dup(f->value, f->value_len);
		append_field(&out->inner, f->name, f->name_len, raw);
		r = hcp(pol, f, &repl);
		if (r == HCP_REMOVE) {
			edit_add(&deletes, HP_OP_DELETE, f->name, f->name_len, f->index, NULL);
		} else {
			/* HP-Outer records what the world sees (RFC 9788 2.2). */
			buf_appends(&outer_copy, "HP-Outer: ");
			append_field(&outer_copy, f->name, f->name_len, r == HCP_REPLACE ? repl : raw);
			if (r == HCP_REPLACE)
				edit_add(&out->outer, HP_OP_SET, f->name, f->name_len, f->index, xstrdup(repl));
		}
		if (r != HCP_KEEP && name_in(f->name, f->name_len, display_names)) {
			hidden[i] = true;
			out->hidden++;
		}
		free(repl);
		free(raw);
	}
	buf_append(&out->inner, outer_copy.data, outer_copy.len);
	buf_release(&outer_copy);
	/* Deletions last, the highest index of a name first. */
	for (size_t i = deletes.n; i > 0; i--) {
		struct hp_edit *d = &deletes.v[i - 1];

		edit_add(&out->outer, HP_OP_DELETE, d->name, strlen(d->name), d->index, NULL);
	}
	hp_edits_release(&deletes);
	legacy_lines(&fs, hidden, &out->legacy);
	free(hidden);
	hp_fields_release(&fs);
	return CABLES_OK;
}

/* Does a Content-Type value have parameter name (any value)? */
static bool
has_param(const char *value, const char *name)
{
	char *v = mime_type_param(value, name);
	bool yes = v != NULL;

	free(v);
	return yes;
}

char *
hp_content_type(const char *value, bool legacy, struct cables_err *err)
{
	const char *v = value != NULL ? value : " text/plain";

	if (has_param(v, "hp") || has_param(v, "hp-legacy-display") || has_param(v, "protected-headers")) {
		cables_fail(err, CABLES_ERR_ARG, "the content already claims header protection (Content-Type has "
		    "hp, hp-legacy-display or protected-headers)");
		return NULL;
	}
	return xasprintf("%s%s; hp=\"cipher\"", v, legacy ? "; hp-legacy-display=\"1\"" : "");
}

/* ---- inbound ---- */

void
hp_restore_release(struct hp_restore *r)
{
	hp_edits_release(&r->outer);
	buf_release(&r->content);
}

/* The first field named name, or NULL. */
const struct field *
hp_first_named(const struct fields *fs, const char *name)
{
	for (size_t i = 0; i < fs->n; i++)
		if (hp_name_is(fs->v[i].name, fs->v[i].name_len, name))
			return &fs->v[i];
	return NULL;
}

/* Is parameter name of a Content-Type value equal to want (case-insensitive)? */
bool
hp_param_is(const char *ct, const char *name, const char *want)
{
	char *v = mime_type_param(ct, name);
	bool yes = v != NULL && str_ieq(v, want);

	free(v);
	return yes;
}

static bool
is_drop_param(const char *name, size_t n)
{
	return hp_name_is(name, n, "hp") || hp_name_is(name, n, "hp-legacy-display") || hp_name_is(name, n, "protected-headers");
}

/*
 * A Content-Type value without its hp, hp-legacy-display and
 * protected-headers parameters: each is cut from its ';' to the end of its
 * value, so "; hp=\"cipher\"" as hp_content_type() appends it goes byte
 * for byte.  Quoted strings and comments are stepped over.
 */
static char *
strip_hp_params(const char *v, size_t n)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b);
	while (i < n) {
		size_t semi = i, j, name_from, name_to;
		int depth = 0;
		bool quoted = false;

		/* Copy up to the next ';' outside quotes and comments. */
		for (; semi < n; semi++) {
			if (quoted) {
				if (v[semi] == '\\')
					semi++;
				else if (v[semi] == '"')
					quoted = false;
			} else if (v[semi] == '"') {
				quoted = true;
			} else if (v[semi] == '(') {
				depth++;
			} else if (v[semi] == ')' && depth > 0) {
				depth--;
			} else if (v[semi] == ';' && depth == 0) {
				break;
			}
		}
		if (semi > n)
			semi = n;
		buf_append(&b, v + i, semi - i);
		if (semi >= n)
			break;
		j = semi + 1;
		while (j < n && (v[j] == ' ' || v[j] == '\t' || v[j] == '\r' || v[j] == '\n'))
			j++;
		name_from = j;
		while (j < n && v[j] != '=' && v[j] != ';' && v[j] != ' ' && v[j] != '\t')
			j++;
		name_to = j;
		if (!is_drop_param(v + name_from, name_to - name_from)) {
			buf_append(&b, ";", 1);
			i = semi + 1;
			continue;
		}
		/* Skip "= value" (token or quoted string). */
		while (j < n && (v[j] == ' ' || v[j] == '\t'))
			j++;
		if (j < n && v[j] == '=')
			j++;
		while (j < n && (v[j] == ' ' || v[j] == '\t'))
			j++;
		if (j < n && v[j] == '"') {
			for (j++; j < n && v[j] != '"'; j++)
				if (v[j] == '\\')
					j++;
			if (j < n)
				j++;
		} else {
			while (j < n && v[j] != ';' && v[j] != ' ' && v[j] != '\t' && v[j] != '\r' && v[j] != '\n')
				j++;
		}
		i = j;
	}
	return b.data;
}

static bool
name_among(const struct fields *fs, const char *name, size_t len, enum hp_class skip1, enum hp_class skip2)
{
	for (size_t i = 0; i < fs->n; i++) {
		enum hp_class c = hp_field_class(fs->v[i].name, fs->v[i].name_len);

		if (c != skip1 && c != skip2 && fs->v[i].name_len == len && str_nieq(fs->v[i].name, name, len))
			return true;
	}
	return false;
}

/* Fields the protected section decides even by their absence (never From, Date, Message-ID). */
static bool
absence_counts(const char *name, size_t len)
{
	return hp_field_class(name, len) == HP_CLASS_USER && !hp_name_is(name, len, "From") &&
	    !hp_name_is(name, len, "Date") && !hp_name_is(name, len, "Message-ID");
}

/* Edits for one protected name: SET over the outer fields, ADD beyond them, DELETE the surplus. */
static void
restore_name(const struct fields *in, const struct fields *outer, size_t first, struct hp_edits *e)
{
	const struct field *f0 = &in->v[first];
	unsigned int k = 0, m = count_name(outer, outer->n, f0->name, f0->name_len);

	for (size_t i = first; i < in->n; i++) {
		const struct field *f = &in->v[i];

		if (f->name_len != f0->name_len || !str_nieq(f->name, f0->name, f0->name_len))
			continue;
		k++;
		edit_add(e, k <= m ? HP_OP_SET : HP_OP_ADD, f->name, f->name_len, k <= m ? k : 0,
		    value_dup(f->value, f->value_len));
	}
	for (unsigned int j = m; j > k; j--)
		edit_add(e, HP_OP_DELETE, f0->name, f0->name_len, j, NULL);
}

/* Delete every outer field of this name, last first. */
static void
delete_all(const struct fields *outer, const char *name, size_t len, struct hp_edits *e)
{
	for (unsigned int j = count_name(outer, outer->n, name, len); j > 0; j--)
		edit_add(e, HP_OP_DELETE, name, len, j, NULL);
}

static enum hp_legacy
restore_legacy(const struct hp_restore *r, const char *ct, unsigned int flags)
{
	struct mime_type t;
	enum hp_legacy kind = HP_LEGACY_NONE;

	if ((flags & HP_SIGNED) || !(flags & HP_IN_ENCRYPTION) || !r->cipher || ct == NULL)
		return HP_LEGACY_NONE;
	mime_type_parse(ct, &t);
	if (r->scheme == HP_SCHEME_RFC9788 && hp_param_is(ct, "hp-legacy-display", "1")) {
		if (mime_type_is(&t, "text", "plain"))
			kind = HP_LEGACY_TEXT;
		else if (mime_type_is(&t, "text", "html"))
			kind = HP_LEGACY_HTML;
	} else if (r->scheme == HP_SCHEME_V1 && mime_type_is(&t, "multipart", "mixed") && t.boundary != NULL) {
		kind = HP_LEGACY_V1_PART;
	} else if (r->scheme == HP_SCHEME_RFC9788 && mime_type_is(&t, "multipart", NULL) && t.boundary != NULL) {
		kind = HP_LEGACY_NESTED;
	}
	mime_type_release(&t);
	return kind;
}

cables_status
hp_restore(const char *payload, size_t len, const char *outer, size_t outer_len, unsigned int flags,
    struct hp_restore *out, struct cables_err *err)
{
	struct fields in, of;
	const struct field *ctf;
	char *ct = NULL;
	cables_status st;

	memset(out, 0, sizeof(*out));
	buf_init(&out->content);
	memset(&of, 0, sizeof(of));
	if ((st = hp_fields_parse(payload, len, true, &in, err)) != CABLES_OK)
		goto out;
	if (!in.blank) {
		st = cables_fail(err, in.end >= len ? CABLES_ERR_TOOBIG : CABLES_ERR_SYNTAX,
		    in.end >= len ? "the payload's header section does not end within %zu bytes" :
		    "the payload's header section ends at a line that is not a field (offset %zu)", in.end);
		goto out;
	}
	out->body_off = in.end;
	if ((ctf = hp_first_named(&in, "Content-Type")) != NULL)
		ct = hp_value_flat(ctf->value, ctf->value_len);
	if (ct != NULL && (hp_param_is(ct, "hp", "cipher") || hp_param_is(ct, "hp", "clear"))) {
		out->scheme = HP_SCHEME_RFC9788;
		out->cipher = hp_param_is(ct, "hp", "cipher") && (flags & HP_IN_ENCRYPTION);
	} else if (ct != NULL && hp_param_is(ct, "protected-headers", "v1")) {
		out->scheme = HP_SCHEME_V1;
		out->cipher = (flags & HP_IN_ENCRYPTION) != 0;
	}
	if ((st = hp_fields_parse(outer, outer_len, false, &of, err)) != CABLES_OK)
		goto out;
	/* The payload's content fields, the parameters we or the sender's client added taken off. */
	for (size_t i = 0; i < in.n; i++) {
		const struct field *f = &in.v[i];
		char *v;

		if (hp_field_class(f->name, f->name_len) != HP_CLASS_STRUCTURAL)
			continue;
		buf_append(&out->content, f->name, f->name_len);
		buf_append(&out->content, ":", 1);
		if (f == ctf && out->scheme != HP_SCHEME_NONE && !(flags & HP_SIGNED)) {
			v = strip_hp_params(f->value, f->value_len);
			append_value(&out->content, v, strlen(v));
			free(v);
		} else {
			append_value(&out->content, f->value, f->value_len);
		}
		buf_append(&out->content, "\r\n", 2);
	}
	if (out->scheme == HP_SCHEME_NONE)
		goto out;
	for (size_t i = 0; i < in.n; i++) {
		const struct field *f = &in.v[i];
		enum hp_class c = hp_field_class(f->name, f->name_len);

		if (c == HP_CLASS_TRANSPORT && !hp_name_is(f->name, f->name_len, "HP-Outer"))
			out->refused++;
		if ((c != HP_CLASS_USER && c != HP_CLASS_OTHER) || f->index != 1)
			continue;
		restore_name(&in, &of, i, &out->outer);
	}
	/* RFC 9788: what is only outside was not written by the sender (v1 makes no such promise). */
	if (out->scheme == HP_SCHEME_RFC9788)
		for (size_t i = 0; i < of.n; i++) {
			const struct field *f = &of.v[i];

			if (f->index == 1 && absence_counts(f->name, f->name_len) &&
			    !name_among(&in, f->name, f->name_len, HP_CLASS_STRUCTURAL, HP_CLASS_TRANSPORT))
				delete_all(&of, f->name, f->name_len, &out->outer);
		}
	out->legacy = restore_legacy(out, ct, flags);
out:
	free(ct);
	hp_fields_release(&in);
	hp_fields_release(&of);
	return st;
}

/* ---- applying edits to a header section held in memory ---- */

/* One field of a header section: its name and its whole text (folds and line end included). */
struct field_text {
	char *name;
	struct buf text;
};

/* Split a header section into fields; false on a line that is neither a field nor a fold. */
static bool
split_fields(const char *p, size_t len, struct field_text **out, size_t *n)
{
	size_t at = 0;

	*out = NULL;
	*n = 0;
	while (at < len) {
		const char *eol = memchr(p + at, '\n', len - at);
		size_t end = eol != NULL ? (size_t)(eol - p) + 1 : len;

		if (p[at] == ' ' || p[at] == '\t') {
			if (*n == 0)
				return false;
			buf_append(&(*out)[*n - 1].text, p + at, end - at);
		} else {
			const char *colon = memchr(p + at, ':', end - at);

			if (colon == NULL)
				return false;
			*out = xreallocarray(*out, *n + 1, sizeof(**out));
			(*out)[*n].name = xstrndup(p + at, (size_t)(colon - (p + at)));
			buf_init(&(*out)[*n].text);
			buf_append(&(*out)[*n].text, p + at, end - at);
			(*n)++;
		}
		at = end;
	}
	return true;
}

/* The index-th (1-based) field named name, or n. */
static size_t
find_field(const struct field_text *f, size_t n, const char *name, unsigned int index)
{
	for (size_t i = 0; i < n; i++)
		if (str_ieq(f[i].name, name) && --index == 0)
			return i;
	return n;
}

cables_status
hp_edits_apply(const char *head, size_t len, const struct hp_edits *e, struct buf *out, struct cables_err *err)
{
	struct field_text *f;
	size_t n, i;
	cables_status st = CABLES_OK;

	if (!split_fields(head, len, &f, &n)) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "a header line is neither a field nor a continuation");
		goto out;
	}
	for (size_t k = 0; k < e->n; k++) {
		const struct hp_edit *ed = &e->v[k];

		if (ed->op == HP_OP_ADD) {
			f = xreallocarray(f, n + 1, sizeof(*f));
			f[n].name = xstrdup(ed->name);
			buf_init(&f[n].text);
			buf_printf(&f[n].text, "%s:%s\r\n", ed->name, ed->value);
			n++;
			continue;
		}
		if ((i = find_field(f, n, ed->name, ed->index)) == n)
			continue;
		if (ed->op == HP_OP_SET) {
			buf_reset(&f[i].text);
			buf_printf(&f[i].text, "%s:%s\r\n", f[i].name, ed->value);
		} else {
			free(f[i].name);
			buf_release(&f[i].text);
			memmove(&f[i], &f[i + 1], (n - i - 1) * sizeof(*f));
			n--;
		}
	}
	for (i = 0; i < n; i++)
		buf_append(out, f[i].text.data, f[i].text.len);
out:
	for (i = 0; i < n; i++) {
		free(f[i].name);
		buf_release(&f[i].text);
	}
	free(f);
	return st;
}
