/*
 * policy - tables of per-address settings: the encryption policy of
 * recipients (values of enum enc_policy) and whether senders sign (0/1).
 *
 * A rule names an address ("bob@b.test"), a domain ("b.test") or a domain
 * and its subdomains (".b.test"); the most specific matching rule wins:
 * address, then exact domain, then the longest matching ".suffix", then
 * the default.  Rules are matched against normalised addresses (addr.h).
 *
 * The table owns its strings; policy_table_release() frees them.
 */
#ifndef CABLES_POLICY_H
#define CABLES_POLICY_H

#include <stddef.h>

#include "addr.h"
#include "status.h"

enum enc_policy {
	POLICY_NEVER,		/* never encrypt */
	POLICY_ENCRYPT,		/* encrypt when every recipient has a usable key */
	POLICY_REQUIRE,		/* must encrypt: no key means temp-fail or reject */
};

struct policy_rule {
	char *match;		/* address, domain or .domain (domains lowercase) */
	int value;		/* an enum enc_policy, or 0/1 */
	unsigned int line;	/* config line that set it, for "decided by" */
};

struct policy_table {
	struct policy_rule *rules;
	size_t count;
	int dflt;
};

const char *policy_name(enum enc_policy p);
/* Parse "never"/"encrypt"/"require"; false if unknown. */
int policy_parse(const char *s, enum enc_policy *out);

/*
 * Add a rule; match must be a valid address, domain or .domain.  The
 * domain is folded to lowercase, the local part is kept as given.  A
 * second rule for the same target is CABLES_ERR_EXISTS naming the line of
 * the first.
 */
cables_status policy_table_add(struct policy_table *t, const char *match,
    int value, unsigned int line, struct cables_err *err);

/*
 * Bring address rules into the form lookups use (addr_normalize with o).
 * A rule naming a sub-address ("bob+x@b.test") is an error, since lookups
 * never see one; so are two rules that become the same.  On error, *line
 * is the config line of the offending rule.
 */
cables_status policy_table_normalize(struct policy_table *t, const struct addr_opts *o,
    unsigned int *line, struct cables_err *err);

/*
 * The effective value for a normalised address.  When rule is not NULL it
 * is set to the deciding rule, or NULL when the default decided.
 */
int policy_lookup(const struct policy_table *t, const char *addr, const struct policy_rule **rule);

void policy_table_release(struct policy_table *t);

#endif
