/* policy - the per-recipient encryption policy table; see policy.h. */
#include "autoconfig.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "policy.h"
#include "util.h"

static const char *const policy_names[] = {
	[POLICY_NEVER] = "never",
	[POLICY_ENCRYPT] = "encrypt",
	[POLICY_REQUIRE] = "require",
};

const char *
policy_name(enum enc_policy p)
{
	return policy_names[p];
}

int
policy_parse(const char *s, enum enc_policy *out)
{
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (str_ieq(s, policy_names[i])) {
			*out = (enum enc_policy)i;
			return 1;
		}
	return 0;
}

cables_status
policy_table_add(struct policy_table *t, const char *match, int value, unsigned int line,
    struct cables_err *err)
{
	char *key;

	if (strchr(match, '@') != NULL ? !addr_valid(match) :
	    !domain_valid(match[0] == '.' ? match + 1 : match))
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "'%s' is not an address, a domain or a .domain", match);
	key = xstrdup(match);
	str_lower(strrchr(key, '@') != NULL ? strrchr(key, '@') : key);
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->rules[i].match, key) == 0) {
			free(key);
			return cables_fail(err, CABLES_ERR_EXISTS,
			    "a policy for '%s' is already set at line %u", match, t->rules[i].line);
		}
	t->rules = xreallocarray(t->rules, t->count + 1, sizeof(*t->rules));
	t->rules[t->count].match = key;
	t->rules[t->count].value = value;
	t->rules[t->count].line = line;
	t->count++;
	return CABLES_OK;
}

cables_status
policy_table_normalize(struct policy_table *t, const struct addr_opts *o, unsigned int *line,
    struct cables_err *err)
{
	for (size_t i = 0; i < t->count; i++) {
		struct policy_rule *r = &t->rules[i];
		char *norm;
		size_t local_len;

		if (strchr(r->match, '@') == NULL)
			continue;
		norm = addr_normalize(r->match, o);
		local_len = (size_t)(strrchr(r->match, '@') - r->match);
		if (norm == NULL || strrchr(norm, '@') - norm != (ptrdiff_t)local_len) {
			*line = r->line;
			free(norm);
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "'%s' names a sub-address; keys and policies belong to the address without it",
			    r->match);
		}
		free(r->match);
		r->match = norm;
		for (size_t j = 0; j < i; j++)
			if (strcmp(t->rules[j].match, r->match) == 0) {
				*line = r->line;
				return cables_fail(err, CABLES_ERR_EXISTS,
				    "a policy for '%s' is already set at line %u", r->match, t->rules[j].line);
			}
	}
	return CABLES_OK;
}

int
policy_lookup(const struct policy_table *t, const char *addr, const struct policy_rule **rule)
{
	const struct policy_rule *best = NULL;
	const char *domain = addr_domain(addr);
	size_t best_len = 0, dlen = domain != NULL ? strlen(domain) : 0;
	int best_rank = 0;	/* 3 address, 2 domain, 1 suffix */

	for (size_t i = 0; i < t->count; i++) {
		const struct policy_rule *r = &t->rules[i];
		size_t mlen = strlen(r->match);

		if (strchr(r->match, '@') != NULL) {
			if (strcmp(r->match, addr) == 0) {
				best = r;
				best_rank = 3;
				break;
			}
		} else if (domain == NULL) {
			continue;
		} else if (r->match[0] != '.') {
			if (best_rank < 2 && strcmp(r->match, domain) == 0) {
				best = r;
				best_rank = 2;
			}
		} else if (best_rank <= 1 && dlen > mlen &&
		    strcmp(domain + dlen - mlen, r->match) == 0 && mlen > best_len) {
			best = r;
			best_rank = 1;
			best_len = mlen;
		}
	}
	if (rule != NULL)
		*rule = best;
	return best != NULL ? best->value : t->dflt;
}

void
policy_table_release(struct policy_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->rules[i].match);
	free(t->rules);
	t->rules = NULL;
	t->count = 0;
}
