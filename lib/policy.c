/* policy - the policy table; see policy.h. */
#include "autoconfig.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "hp.h"
#include "pad.h"
#include "policy.h"
#include "util.h"

static const char *const policy_words[] = { "never", "encrypt", "require", NULL };
static const char *const format_words[] = { "smime", "pgp", "auto", NULL };
static const char *const bool_words[] = { "no", "yes", NULL };
static const char *const action_words[] = { "tempfail", "reject", "accept", "quarantine", "hold", NULL };
/* In the order of enum hp_policy (hp.h) and enum pad_mode (pad.h). */
static const char *const hcp_words[] = { "none", "baseline", "shy", "off", NULL };
static const char *const padding_words[] = { "none", "buckets", NULL };
static const char *const fs_words[] = { "require", "prefer", "off", NULL };
_Static_assert(HP_POLICY_NONE == 0 && HP_POLICY_BASELINE == 1 && HP_POLICY_SHY == 2 && HP_POLICY_OFF == 3,
    "hcp_words order");
_Static_assert(PAD_NONE == 0 && PAD_BUCKETS == 1, "padding_words order");

/* Attribute names, their words, the values they allow (bit mask over the words), defaults. */
static const struct {
	const char *name;
	const char *const *words;
	unsigned int allowed;
	int dflt;
} attrs[PA_COUNT] = {
	[PA_POLICY] = { "Policy", policy_words, 07, POLICY_ENCRYPT },
	[PA_FORMAT] = { "Format", format_words, 07, FORMAT_AUTO },
	[PA_SIGN] = { "Sign", bool_words, 03, 0 },
	[PA_SELF] = { "EncryptToSelf", bool_words, 03, 0 },
	[PA_ON_KEY_NOT_FOUND] = { "On-KeyNotFound", action_words, 023, ACTION_HOLD },
	[PA_ON_INTERNAL_ERROR] = { "On-InternalError", action_words, 07, ACTION_TEMPFAIL },
	[PA_ON_DECRYPT_ERROR] = { "On-DecryptError", action_words, 017, ACTION_ACCEPT },
	[PA_ON_KEYD_ERROR] = { "On-KeydError", action_words, 07, ACTION_TEMPFAIL },
	[PA_ON_KEY_CHANGE] = { "On-KeyChange", action_words, 07, ACTION_ACCEPT },
	[PA_HEADER_PROTECTION] = { "HeaderProtection", hcp_words, 017, HP_POLICY_BASELINE },
	[PA_PADDING] = { "Padding", padding_words, 03, PAD_BUCKETS },
	[PA_FORWARD_SECRECY] = { "ForwardSecrecy", fs_words, 07, FS_PREFER },
	[PA_HOLD_NOTICE] = { "HoldNotice", bool_words, 03, 1 },
};

const char *
policy_attr_name(enum policy_attr a)
{
	return attrs[a].name;
}

int
policy_attr_find(const char *name)
{
	for (int a = 0; a < PA_COUNT; a++)
		if (str_ieq(name, attrs[a].name))
			return a;
	return -1;
}

bool
policy_value_parse(enum policy_attr a, const char *word, int *value)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	if (attrs[a].words == bool_words) {
		for (int i = 0; yes[i] != NULL; i++)
			if (str_ieq(word, yes[i])) {
				*value = 1;
				return true;
			}
		for (int i = 0; no[i] != NULL; i++)
			if (str_ieq(word, no[i])) {
				*value = 0;
				return true;
			}
		return false;
	}
	for (int i = 0; attrs[a].words[i] != NULL; i++)
		if ((attrs[a].allowed & (1u << i)) && str_ieq(word, attrs[a].words[i])) {
			*value = i;
			return true;
		}
	return false;
}

const char *
policy_value_name(enum policy_attr a, int value)
{
	return value >= 0 ? attrs[a].words[value] : "(unset)";
}

void
policy_value_words(enum policy_attr a, char *out, size_t len)
{
	int n = 0, total = 0;

	if (attrs[a].words == bool_words || attrs[a].words == policy_words) {
		snprintf(out, len, "%s", attrs[a].words == bool_words ? "yes or no" : "require, encrypt or never");
		return;
	}
	for (int i = 0; attrs[a].words[i] != NULL; i++)
		if (attrs[a].allowed & (1u << i))
			total++;
	out[0] = '\0';
	for (int i = 0; attrs[a].words[i] != NULL; i++) {
		size_t used = strlen(out);

		if (!(attrs[a].allowed & (1u << i)))
			continue;
		snprintf(out + used, len - used, "%s%s", n == 0 ? "" : n == total - 1 ? " or " : ", ",
		    attrs[a].words[i]);
		n++;
	}
}

const char *
policy_name(enum enc_policy p)
{
	return policy_words[p];
}

const char *
fail_action_name(enum fail_action a)
{
	return action_words[a];
}

void
policy_table_init(struct policy_table *t)
{
	memset(t, 0, sizeof(*t));
	for (int a = 0; a < PA_COUNT; a++)
		t->dflt[a] = attrs[a].dflt;
}

static struct policy_entry *
find_entry(struct policy_table *t, const char *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->entries[i].match, key) == 0)
			return &t->entries[i];
	return NULL;
}

cables_status
policy_table_set(struct policy_table *t, const char *match, enum policy_attr a, int value,
    unsigned int line, struct cables_err *err)
{
	struct policy_entry *e;
	char *key;

	if (strchr(match, '@') != NULL ? !addr_valid(match) :
	    !domain_valid(match[0] == '.' ? match + 1 : match))
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "'%s' is not an address, a domain or a .domain", match);
	key = xstrdup(match);
	str_lower(strrchr(key, '@') != NULL ? strrchr(key, '@') : key);
	e = find_entry(t, key);
	if (e == NULL) {
		t->entries = xreallocarray(t->entries, t->count + 1, sizeof(*t->entries));
		e = &t->entries[t->count++];
		e->match = key;
		for (int i = 0; i < PA_COUNT; i++) {
			e->value[i] = -1;
			e->line[i] = 0;
		}
	} else {
		free(key);
		if (e->value[a] >= 0)
			return cables_fail(err, CABLES_ERR_EXISTS, "%s for '%s' is already set at line %u",
			    attrs[a].name, match, e->line[a]);
	}
	e->value[a] = value;
	e->line[a] = line;
	return CABLES_OK;
}

static unsigned int
first_line(const struct policy_entry *e)
{
	unsigned int line = 0;

	for (int a = 0; a < PA_COUNT; a++)
		if (e->value[a] >= 0 && (line == 0 || e->line[a] < line))
			line = e->line[a];
	return line;
}

/* A domain entry ("example" or ".example") in the form recipients' domains are compared in; NULL if none. */
static char *
domain_normalize_entry(const char *match)
{
	char *d = addr_domain_normalize(match[0] == '.' ? match + 1 : match), *out;

	if (d == NULL || match[0] != '.')
		return d;
	out = xasprintf(".%s", d);
	free(d);
	return out;
}

cables_status
policy_table_normalize(struct policy_table *t, const struct addr_opts *o, unsigned int *line,
    struct cables_err *err)
{
	for (size_t i = 0; i < t->count; i++) {
		struct policy_entry *e = &t->entries[i];
		char *norm;
		size_t local_len;

		if (strchr(e->match, '@') == NULL) {
			/* Domains as recipients' are compared: A-labels, no final dot. */
			norm = domain_normalize_entry(e->match);
			if (norm == NULL) {
				*line = first_line(e);
				return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not a domain name IDNA 2008 accepts",
				    e->match);
			}
		} else {
			norm = addr_normalize(e->match, o);
			local_len = (size_t)(strrchr(e->match, '@') - e->match);
			if (norm == NULL) {
				*line = first_line(e);
				return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not an address IDNA 2008 accepts",
				    e->match);
			}
			if (strrchr(norm, '@') - norm != (ptrdiff_t)local_len && e->match[0] != '"') {
				*line = first_line(e);
				free(norm);
				return cables_fail(err, CABLES_ERR_SYNTAX,
				    "'%s' names a sub-address; keys and policies belong to the address without it",
				    e->match);
			}
		}
		free(e->match);
		e->match = norm;
		/* Entries that fold together merge, unless they set the same attribute. */
		for (size_t j = 0; j < i; j++) {
			struct policy_entry *f = &t->entries[j];

			if (strcmp(f->match, e->match) != 0)
				continue;
			for (int a = 0; a < PA_COUNT; a++) {
				if (e->value[a] < 0)
					continue;
				if (f->value[a] >= 0) {
					*line = e->line[a];
					return cables_fail(err, CABLES_ERR_EXISTS, "%s for '%s' is already set at line %u",
					    attrs[a].name, e->match, f->line[a]);
				}
				f->value[a] = e->value[a];
				f->line[a] = e->line[a];
			}
			free(e->match);
			memmove(e, e + 1, (t->count - i - 1) * sizeof(*e));
			t->count--;
			i--;
			break;
		}
	}
	return CABLES_OK;
}

int
policy_get(const struct policy_table *t, const char *addr, enum policy_attr a,
    const struct policy_entry **entry)
{
	const struct policy_entry *best = NULL;
	const char *domain = addr != NULL ? addr_domain(addr) : NULL;
	size_t best_len = 0, dlen = domain != NULL ? strlen(domain) : 0;
	int best_rank = 0;	/* 3 address, 2 domain, 1 suffix */

	for (size_t i = 0; addr != NULL && i < t->count; i++) {
		const struct policy_entry *e = &t->entries[i];
		size_t mlen;

		if (e->value[a] < 0)
			continue;
		mlen = strlen(e->match);
		if (strchr(e->match, '@') != NULL) {
			if (strcmp(e->match, addr) == 0) {
				best = e;
				break;
			}
		} else if (domain == NULL) {
			continue;
		} else if (e->match[0] != '.') {
			if (best_rank < 2 && strcmp(e->match, domain) == 0) {
				best = e;
				best_rank = 2;
			}
		} else if (best_rank <= 1 && dlen > mlen &&
		    strcmp(domain + dlen - mlen, e->match) == 0 && mlen > best_len) {
			best = e;
			best_rank = 1;
			best_len = mlen;
		}
	}
	if (entry != NULL)
		*entry = best;
	return best != NULL ? best->value[a] : t->dflt[a];
}

void
policy_table_release(struct policy_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->entries[i].match);
	free(t->entries);
	t->entries = NULL;
	t->count = 0;
}
