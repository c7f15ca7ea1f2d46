/* hp_legacy - the legacy display element of RFC 9788 section 5.2: made, found, cut; see hp.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "hp.h"
#include "hp_private.h"
#include "mime.h"
#include "util.h"

static bool
cte_is_identity(const char *cte)
{
	char *c;
	bool yes;

	if (cte == NULL)
		return true;
	c = hp_value_flat(cte, strlen(cte));
	yes = str_ieq(c, "7bit") || str_ieq(c, "8bit") || str_ieq(c, "binary");
	free(c);
	return yes;
}

enum hp_legacy
hp_legacy_kind(const char *content_type, const char *cte, const char *disposition)
{
	struct mime_type t;
	char *charset = mime_type_param(content_type, "charset"), *disp = NULL;
	enum hp_legacy kind = HP_LEGACY_NONE;
	bool cs_ok = charset == NULL || str_ieq(charset, "us-ascii") || str_ieq(charset, "utf-8");

	if (disposition != NULL) {
		disp = hp_value_flat(disposition, strlen(disposition));
		if (str_nieq(disp, "attachment", 10))
			cs_ok = false;
	}
	mime_type_parse(content_type, &t);
	if (cs_ok && cte_is_identity(cte)) {
		if (mime_type_is(&t, "text", "plain"))
			kind = HP_LEGACY_TEXT;
		else if (mime_type_is(&t, "text", "html"))
			kind = HP_LEGACY_HTML;
	}
	mime_type_release(&t);
	free(charset);
	free(disp);
	return kind;
}

static bool
part_is_utf8(const char *content_type, const char *cte)
{
	char *charset = mime_type_param(content_type, "charset"), *c = NULL;
	bool yes = charset != NULL && str_ieq(charset, "utf-8");

	if (yes && cte != NULL) {
		c = hp_value_flat(cte, strlen(cte));
		yes = str_ieq(c, "8bit") || str_ieq(c, "binary");
	} else if (cte == NULL) {
		yes = false;	/* 7bit by default */
	}
	free(charset);
	free(c);
	return yes;
}

static void
append_html_escaped(struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		switch (s[i]) {
		case '<':
			buf_appends(out, "&lt;");
			break;
		case '>':
			buf_appends(out, "&gt;");
			break;
		case '&':
			buf_appends(out, "&amp;");
			break;
		case '"':
			buf_appends(out, "&quot;");
			break;
		default:
			buf_append(out, &s[i], 1);
		}
}

void
hp_legacy_element(enum hp_legacy kind, const struct buf *fields, const char *content_type, const char *cte,
    struct buf *out)
{
	bool utf8 = part_is_utf8(content_type, cte);
	const char *p = fields->data, *end = fields->data + fields->len;

	if ((kind != HP_LEGACY_TEXT && kind != HP_LEGACY_HTML) || fields->len == 0)
		return;
	if (kind == HP_LEGACY_HTML)
		buf_appends(out, "<div class=\"header-protection-legacy-display\"><pre>\r\n");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (nl != NULL ? (size_t)(nl - p) : (size_t)(end - p));
		char *line = xstrndup(p, n), *shown = line;
		gchar *dec = NULL;

		str_trim(line);
		if (utf8 && strstr(line, "=?") != NULL && (dec = g_mime_utils_header_decode_text(NULL, line)) != NULL)
			shown = dec;
		if (kind == HP_LEGACY_HTML)
			append_html_escaped(out, shown, strlen(shown));
		else
			buf_appends(out, shown);
		buf_append(out, "\r\n", 2);
		g_free(dec);
		free(line);
		p = nl != NULL ? nl + 1 : end;
	}
	buf_appends(out, kind == HP_LEGACY_HTML ? "</pre></div>\r\n" : "\r\n");
}

/* Case-insensitive search for an ASCII needle. */
static const char *
find_ci(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (str_nieq(p + i, needle, n))
			return p + i;
	return NULL;
}

size_t
hp_legacy_html_offset(const char *p, size_t len)
{
	const char *b = p, *gt;

	for (;;) {
		b = find_ci(b, len - (size_t)(b - p), "<body");
		if (b == NULL)
			return 0;
		/* "<body>" or "<body attr...>", not "<bodyfoo>". */
		if (b + 5 < p + len && (b[5] == '>' || b[5] == ' ' || b[5] == '\t' || b[5] == '\r' || b[5] == '\n'))
			break;
		b += 5;
	}
	gt = memchr(b, '>', len - (size_t)(b - p));
	return gt != NULL ? (size_t)(gt - p) + 1 : 0;
}


/* Is p[0..n) a run of "Name: value" lines (folds allowed)? */
static bool
only_field_lines(const char *p, size_t n)
{
	struct mime_field f;
	size_t off = 0;
	unsigned int count = 0;

	while (mime_field_next(p, n, &off, &f) == 1)
		count++;
	return count > 0 && off >= n;
}

size_t
hp_legacy_strip_text(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return only_field_lines(p, i + 1) ? i + 2 : 0;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return only_field_lines(p, i + 1) ? i + 3 : 0;
	}
	return 0;
}

bool
hp_legacy_strip_html(const char *p, size_t len, size_t *from, size_t *to)
{
	const char *cls = find_ci(p, len, "header-protection-legacy-display"), *div, *end;
	size_t at, stop;

	if (cls == NULL)
		return false;
	/* The div that carries the class: the last "<div" before it, within its tag. */
	for (div = cls; div > p && !(div[0] == '<' && str_nieq(div, "<div", 4)); div--)
		if (*div == '>')
			return false;
	if (div[0] != '<' || !str_nieq(div, "<div", 4))
		return false;
	at = (size_t)(div - p);
	end = find_ci(cls, len - (size_t)(cls - p), "</div>");
	if (end == NULL)
		return false;
	/* Ours holds no nested div; one that does is not cut (the reader sees it, nothing is lost). */
	if (find_ci(cls, (size_t)(end - cls), "<div") != NULL)
		return false;
	stop = (size_t)(end - p) + 6;
	if (stop < len && p[stop] == '\r')
		stop++;
	if (stop < len && p[stop] == '\n')
		stop++;
	*from = at;
	*to = stop;
	return true;
}

/* Offset of the next delimiter line "--boundary" at or after off (at a line start), or len. */
static size_t
next_delimiter(const char *p, size_t len, size_t off, const char *boundary)
{
	size_t bl = strlen(boundary);

	for (size_t i = off; i + 2 + bl <= len; i++) {
		if (i > 0 && p[i - 1] != '\n')
			continue;
		if (p[i] != '-' || p[i + 1] != '-' || memcmp(p + i + 2, boundary, bl) != 0)
			continue;
		/* "--b" must not be the start of "--bogus". */
		if (i + 2 + bl == len || p[i + 2 + bl] == '\r' || p[i + 2 + bl] == '\n' || p[i + 2 + bl] == ' ' ||
		    p[i + 2 + bl] == '\t' || p[i + 2 + bl] == '-')
			return i;
	}
	return len;
}

bool
hp_legacy_strip_v1(const char *p, size_t len, const char *boundary, size_t *from, size_t *to)
{
	size_t first, second, hoff = 0, bl = strlen(boundary), line_end;
	struct fields fs;
	const struct field *ctf;
	char *ct = NULL;
	struct mime_type t;
	bool ok = false;

	if (bl == 0)
		return false;
	first = next_delimiter(p, len, 0, boundary);
	if (first >= len)
		return false;
	line_end = first + 2 + bl;
	while (line_end < len && p[line_end] != '\n')
		line_end++;
	if (line_end >= len)
		return false;
	second = next_delimiter(p, len, line_end + 1, boundary);
	if (second >= len)
		return false;
	hoff = line_end + 1;
	if (hp_fields_parse(p + hoff, second - hoff, false, &fs, NULL) != CABLES_OK || !fs.blank) {
		hp_fields_release(&fs);
		return false;
	}
	if ((ctf = hp_first_named(&fs, "Content-Type")) != NULL)
		ct = hp_value_flat(ctf->value, ctf->value_len);
	if (ct != NULL && hp_param_is(ct, "protected-headers", "v1")) {
		mime_type_parse(ct, &t);
		/* Its lines, without the line break that belongs to the next delimiter. */
		size_t body = hoff + fs.end, stop = second;

		if (stop > body && p[stop - 1] == '\n')
			stop--;
		if (stop > body && p[stop - 1] == '\r')
			stop--;
		ok = (mime_type_is(&t, "text", "rfc822-headers") || mime_type_is(&t, "text", "plain")) &&
		    only_field_lines(p + body, stop - body);
		mime_type_release(&t);
	}
	free(ct);
	hp_fields_release(&fs);
	if (ok) {
		*from = first;
		*to = second;
	}
	return ok;
}

/* ---- main body parts (RFC 9787): where elements go and are found ---- */

/* One main body part that is not a multipart: its bytes, header and body. */
struct leaf {
	size_t from, body, to;	/* part start, first body byte, end (before the next delimiter's line break) */
	const struct fields *fs;
	const char *ct, *cte, *disp;	/* flat values, or NULL */
};

struct walk {
	const char *p;
	void (*visit)(void *arg, const char *p, const struct leaf *l);
	void *arg;
};

/* The first value of a field of a header section (flat, malloc'd), or NULL. */
static char *
value_of(const struct fields *fs, const char *name)
{
	const struct field *f = hp_first_named(fs, name);

	return f != NULL ? hp_value_flat(f->value, f->value_len) : NULL;
}

static void walk_multipart(struct walk *w, size_t from, size_t to, const char *boundary, bool all, int depth);

/*
 * Part [from, to): a multipart/alternative's parts are all main body
 * parts, a multipart/mixed's or multipart/related's first one is; other
 * multiparts (signed, encrypted, report) are not looked into.
 */
static void
walk_part(struct walk *w, size_t from, size_t to, int depth)
{
	struct fields fs;
	struct leaf l;
	char *ct = NULL, *cte = NULL, *disp = NULL;
	struct mime_type t;

	if (hp_fields_parse(w->p + from, to - from, false, &fs, NULL) != CABLES_OK || !fs.blank) {
		hp_fields_release(&fs);
		return;
	}
	ct = value_of(&fs, "Content-Type");
	cte = value_of(&fs, "Content-Transfer-Encoding");
	disp = value_of(&fs, "Content-Disposition");
	mime_type_parse(ct, &t);
	if (mime_type_is(&t, "multipart", NULL)) {
		bool alt = mime_type_is(&t, "multipart", "alternative");

		if (t.boundary != NULL && depth < 3 && (alt || mime_type_is(&t, "multipart", "mixed") ||
		    mime_type_is(&t, "multipart", "related")))
			walk_multipart(w, from + fs.end, to, t.boundary, alt, depth + 1);
	} else {
		l.from = from;
		l.body = from + fs.end;
		l.to = to;
		l.fs = &fs;
		l.ct = ct;
		l.cte = cte;
		l.disp = disp;
		w->visit(w->arg, w->p, &l);
	}
	mime_type_release(&t);
	free(ct);
	free(cte);
	free(disp);
	hp_fields_release(&fs);
}

/* The parts of a multipart body [from, to): all of them, or the first only. */
static void
walk_multipart(struct walk *w, size_t from, size_t to, const char *boundary, bool all, int depth)
{
	size_t bl = strlen(boundary), at = from + next_delimiter(w->p + from, to - from, 0, boundary);

	while (at < to) {
		size_t start = at + 2 + bl, next, end;

		if (start + 1 < to && w->p[start] == '-' && w->p[start + 1] == '-')
			return;	/* the close delimiter */
		while (start < to && w->p[start] != '\n')
			start++;
		if (start >= to)
			return;
		start++;
		next = start + next_delimiter(w->p + start, to - start, 0, boundary);
		if (next >= to) {
			/*
			 * A part that does not end within the bytes at hand: what
			 * it starts with is still looked at, since every cut needs
			 * its whole element in view (the first blank line, the
			 * closing div) and every insertion is near a part's start.
			 */
			walk_part(w, start, to, depth);
			return;
		}
		/* The line break before a delimiter belongs to it. */
		end = next;
		if (end > start && w->p[end - 1] == '\n')
			end--;
		if (end > start && w->p[end - 1] == '\r')
			end--;
		walk_part(w, start, end, depth);
		if (!all)
			return;
		at = next;
	}
}

/* ---- putting elements in (outbound) ---- */

#define PARAM "; hp-legacy-display=\"1\""

struct inserter {
	const struct buf *fields;
	struct hp_insert *ins;
	size_t n, max;
};

static void
insert_add(struct inserter *in, size_t at, const void *p, size_t len)
{
	struct hp_insert *i = &in->ins[in->n++];

	i->at = at;
	buf_init(&i->text);
	buf_append(&i->text, p, len);
}

static void
insert_leaf(void *arg, const char *p, const struct leaf *l)
{
	struct inserter *in = arg;
	enum hp_legacy kind = hp_legacy_kind(l->ct, l->cte, l->disp);
	const struct field *ctf = hp_first_named(l->fs, "Content-Type");
	struct buf el;
	size_t at;

	/* A part without its own Content-Type would need a whole field: left alone. */
	if (kind == HP_LEGACY_NONE || ctf == NULL || in->n + 2 > in->max ||
	    hp_param_is(l->ct, "hp-legacy-display", "1"))
		return;
	insert_add(in, (size_t)(ctf->value + ctf->value_len - p), PARAM, strlen(PARAM));
	at = kind == HP_LEGACY_HTML ? l->body + hp_legacy_html_offset(p + l->body, l->to - l->body) : l->body;
	buf_init(&el);
	hp_legacy_element(kind, in->fields, l->ct, l->cte, &el);
	insert_add(in, at, el.data, el.len);
	buf_release(&el);
}

size_t
hp_legacy_inserts(const char *body, size_t len, const char *content_type, const char *cte, const char *disposition,
    const struct buf *fields, bool *top, struct hp_insert *ins, size_t max)
{
	struct inserter in = { fields, ins, 0, max };
	enum hp_legacy kind = hp_legacy_kind(content_type, cte, disposition);
	struct walk w = { body, insert_leaf, &in };
	struct mime_type t;

	*top = false;
	if (fields->len == 0 || max == 0)
		return 0;
	if (kind != HP_LEGACY_NONE) {
		struct buf el;

		buf_init(&el);
		hp_legacy_element(kind, fields, content_type, cte, &el);
		insert_add(&in, kind == HP_LEGACY_HTML ? hp_legacy_html_offset(body, len) : 0, el.data, el.len);
		buf_release(&el);
		*top = true;
		return in.n;
	}
	mime_type_parse(content_type, &t);
	if (t.boundary != NULL && (mime_type_is(&t, "multipart", "alternative") ||
	    mime_type_is(&t, "multipart", "mixed") || mime_type_is(&t, "multipart", "related")))
		walk_multipart(&w, 0, len, t.boundary, mime_type_is(&t, "multipart", "alternative"), 1);
	mime_type_release(&t);
	return in.n;
}

void
hp_inserts_release(struct hp_insert *ins, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_release(&ins[i].text);
}

/* ---- cutting them out (inbound) ---- */

struct cutter {
	struct hp_cut *cuts;
	size_t n, max;
};

static void
cut_add(struct cutter *c, size_t from, size_t to)
{
	if (from < to && c->n < c->max && (c->n == 0 || c->cuts[c->n - 1].to <= from)) {
		c->cuts[c->n].from = from;
		c->cuts[c->n].to = to;
		c->n++;
	}
}

/*
 * A main body part marked hp-legacy-display="1": its element, and the
 * parameter too when it ends the Content-Type value as hp_legacy_inserts()
 * puts it (so a Cables sender's entity comes back byte for byte).
 */
static void
cut_leaf(void *arg, const char *p, const struct leaf *l)
{
	struct cutter *c = arg;
	const struct field *ctf = hp_first_named(l->fs, "Content-Type");
	struct mime_type t;
	size_t from = 0, to = 0, plen = strlen(PARAM);

	if (l->ct == NULL || !hp_param_is(l->ct, "hp-legacy-display", "1") || !cte_is_identity(l->cte))
		return;
	mime_type_parse(l->ct, &t);
	if (mime_type_is(&t, "text", "plain")) {
		from = l->body;
		to = l->body + hp_legacy_strip_text(p + l->body, l->to - l->body);
	} else if (mime_type_is(&t, "text", "html") && hp_legacy_strip_html(p + l->body, l->to - l->body, &from,
	    &to)) {
		from += l->body;
		to += l->body;
	}
	mime_type_release(&t);
	if (from >= to)
		return;
	if (ctf->value_len >= plen && memcmp(ctf->value + ctf->value_len - plen, PARAM, plen) == 0)
		cut_add(c, (size_t)(ctf->value + ctf->value_len - plen - p), (size_t)(ctf->value + ctf->value_len - p));
	cut_add(c, from, to);
}

size_t
hp_legacy_cuts(const char *payload, size_t len, const struct hp_restore *r, struct hp_cut *cuts, size_t max)
{
	struct cutter c = { cuts, 0, max };
	struct walk w = { payload, cut_leaf, &c };
	size_t b = r->body_off, from, to;
	struct fields fs;
	char *ct;
	struct mime_type t;

	if (b > len || r->legacy == HP_LEGACY_NONE)
		return 0;
	switch (r->legacy) {
	case HP_LEGACY_TEXT:
		cut_add(&c, b, b + hp_legacy_strip_text(payload + b, len - b));
		return c.n;
	case HP_LEGACY_HTML:
		if (hp_legacy_strip_html(payload + b, len - b, &from, &to))
			cut_add(&c, b + from, b + to);
		return c.n;
	default:
		break;
	}
	if (hp_fields_parse(payload, b, false, &fs, NULL) != CABLES_OK) {
		hp_fields_release(&fs);
		return 0;
	}
	ct = value_of(&fs, "Content-Type");
	mime_type_parse(ct, &t);
	if (t.boundary != NULL && r->legacy == HP_LEGACY_V1_PART) {
		if (hp_legacy_strip_v1(payload + b, len - b, t.boundary, &from, &to))
			cut_add(&c, b + from, b + to);
	} else if (t.boundary != NULL && r->legacy == HP_LEGACY_NESTED) {
		walk_multipart(&w, b, len, t.boundary, mime_type_is(&t, "multipart", "alternative"), 1);
	}
	mime_type_release(&t);
	free(ct);
	hp_fields_release(&fs);
	return c.n;
}
