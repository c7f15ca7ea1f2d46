/*
 * addr - mail addresses: envelope parsing, normalisation for key lookup,
 * domain lists and client address (CIDR) lists.
 *
 * Normalisation is what makes "Bob+lists@B.Test" find the key stored for
 * "bob@b.test": the domain is always folded to lowercase (DNS names are
 * case-insensitive), the local part is folded unless local parts are
 * configured case-sensitive, and a sub-address ("+tag" after one of the
 * configured delimiter characters) is removed.  Quoted local parts are left
 * unfolded and unstripped: their bytes are significant.  The domain is
 * written one way only (addr_domain_normalize).
 *
 * Every function returning char * returns a malloc'd string owned by the
 * caller, or NULL when the input is not an address.
 */
#ifndef CABLES_ADDR_H
#define CABLES_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "status.h"

struct addr_opts {
	bool local_case_sensitive;
	char delimiters[16];	/* sub-address delimiter characters; "" = none */
};

/* Bare address from an MTA envelope argument ("<a@b>", "a@b", "<>", "<@r:a@b>"); "" for <>. */
char *addr_from_envelope(const char *arg);

/*
 * Lookup form of addr (see above); NULL if addr is not local@domain or its
 * domain cannot be normalised (addr_domain_normalize).  A quoted local
 * part that is a dot-atom loses its quotes ("bob"@x is bob@x).
 */
char *addr_normalize(const char *addr, const struct addr_opts *o);

/*
 * The one form of a domain that policies, local domains and key lookups
 * compare: lowercase, without a final dot, IDNA 2008 A-labels (UTS 46
 * non-transitional mapping, so "Bücher.example" and "xn--bcher-kva.example"
 * are one domain).  NULL for an address literal ("[192.0.2.1]"), a name
 * that is not a domain, or one IDNA refuses: such a recipient cannot be
 * classified, and callers must not treat it as local or remote by guess.
 */
char *addr_domain_normalize(const char *domain);

/* The domain part of addr (after the last '@'), or NULL. */
const char *addr_domain(const char *addr);

/* A plausible domain name: labels of letters, digits, '-', '_' or 8-bit bytes. */
bool domain_valid(const char *domain);

/* A plausible address for the CLI and the store: local@domain, printable, no spaces. */
bool addr_valid(const char *addr);

/* Domain names: an entry matches itself; an entry ".example" matches its subdomains. */
struct domain_list {
	char **names;		/* lowercase */
	size_t count;
};

void domain_list_add(struct domain_list *l, const char *name);
bool domain_list_match(const struct domain_list *l, const char *domain);
void domain_list_release(struct domain_list *l);

/* Client addresses as IPv4/IPv6 prefixes ("127.0.0.0/8", "::1", "192.0.2.7"). */
struct host_prefix {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned int bits;
};

struct host_list {
	struct host_prefix *items;
	size_t count;
};

cables_status host_list_add(struct host_list *l, const char *spec, struct cables_err *err);
bool host_list_match(const struct host_list *l, const struct sockaddr *sa);
void host_list_release(struct host_list *l);

#endif
