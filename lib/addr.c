/* addr - mail addresses, domain lists, client prefix lists; see addr.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "addr.h"
#include "util.h"

char *
addr_from_envelope(const char *arg)
{
	const char *start = arg, *end, *colon;

	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end > start && *start == '<') {
		if (end - start < 2 || end[-1] != '>')
			return NULL;
		start++;
		end--;
	}
	if (memchr(start, '<', (size_t)(end - start)) != NULL ||
	    memchr(start, '>', (size_t)(end - start)) != NULL)
		return NULL;
	/* Obsolete source route "@a,@b:user@dom": keep what follows the colon. */
	if (start < end && *start == '@') {
		colon = memchr(start, ':', (size_t)(end - start));
		if (colon == NULL)
			return NULL;
		start = colon + 1;
	}
	return xstrndup(start, (size_t)(end - start));
}

const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return (at == NULL || at[1] == '\0') ? NULL : at + 1;
}

bool
domain_valid(const char *d)
{
	const char *p;

	if (d[0] == '\0' || d[0] == '.')
		return false;
	for (p = d; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || (unsigned char)*p >= 0x80))
			return false;
		if (*p == '.' && p[1] == '.')
			return false;
	}
	return p[-1] != '.';
}

bool
addr_valid(const char *addr)
{
	const char *at = strrchr(addr, '@'), *p;

	if (at == NULL || at == addr)
		return false;
	for (p = addr; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return domain_valid(at + 1);
}

/* The content of a quoted local part ("..." with quoted-pairs undone), or NULL if it is not one. */
static char *
unquote_local(const char *local, size_t len)
{
	char *out;
	size_t k = 0;

	if (len < 2 || local[0] != '"' || local[len - 1] != '"')
		return NULL;
	out = xmalloc(len);
	for (size_t i = 1; i + 1 < len; i++) {
		if (local[i] == '\\' && i + 2 < len)
			i++;
		else if (local[i] == '"')
			return free(out), NULL;
		out[k++] = local[i];
	}
	out[k] = '\0';
	return out;
}

/* A dot-atom (RFC 5322): atext runs separated by single dots. */
static bool
is_dot_atom(const char *s)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";

	if (*s == '\0' || *s == '.')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.' ? p[1] == '.' || p[1] == '\0' :
		    !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr(specials, *p) != NULL || (unsigned char)*p >= 0x80))
			return false;
	}
	return true;
}

char *
addr_domain_normalize(const char *domain)
{
	char *d, *ascii = NULL, *out;
	size_t n;
	int rc;

	if (domain == NULL || domain[0] == '[')
		return NULL;	/* an address literal names a host, not a domain a policy can name */
	d = xstrdup(domain);
	n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		d[--n] = '\0';	/* the root: "partner.example." is "partner.example" */
	str_lower(d);
	if (!domain_valid(d)) {
		free(d);
		return NULL;
	}
	/* IDNA 2008 (UTS 46 non-transitional): U-labels to A-labels; A-labels are checked by a round trip. */
	rc = idn2_lookup_u8((const uint8_t *)d, (uint8_t **)&ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL |
	    IDN2_ALABEL_ROUNDTRIP);
	free(d);
	if (rc != IDN2_OK) {
		idn2_free(ascii);
		return NULL;
	}
	out = xstrdup(ascii);
	idn2_free(ascii);
	str_lower(out);
	if (!domain_valid(out)) {
		free(out);
		return NULL;
	}
	return out;
}

char *
addr_normalize(const char *addr, const struct addr_opts *o)
{
	const char *at = strrchr(addr, '@');
	char *local, *domain, *unq, *out;
	size_t local_len;
	bool quoted;

	if (at == NULL || at == addr || at[1] == '\0')
		return NULL;
	if ((domain = addr_domain_normalize(at + 1)) == NULL)
		return NULL;
	local = xstrndup(addr, (size_t)(at - addr));
	/* "bob"@x is bob@x: a quoted local part that is a dot-atom is written without quotes. */
	if ((unq = unquote_local(local, strlen(local))) != NULL && is_dot_atom(unq)) {
		free(local);
		local = unq;
		unq = NULL;
	}
	free(unq);
	quoted = local[0] == '"';
	local_len = strlen(local);
	if (!quoted && o != NULL && o->delimiters[0] != '\0') {
		/* "+tag" after the first delimiter; a leading delimiter is not one. */
		size_t cut = strcspn(local + 1, o->delimiters) + 1;

		if (cut < local_len)
			local_len = cut;
	}
	out = xasprintf("%.*s@%s", (int)local_len, local, domain);
	if (!quoted && (o == NULL || !o->local_case_sensitive))
		for (size_t i = 0; i < local_len; i++)
			if (out[i] >= 'A' && out[i] <= 'Z')
				out[i] = (char)(out[i] + ('a' - 'A'));
	free(local);
	free(domain);
	return out;
}

void
domain_list_add(struct domain_list *l, const char *name)
{
	bool suffix = name[0] == '.';
	char *norm = addr_domain_normalize(suffix ? name + 1 : name), *d;

	/* The form recipients are compared in (A-labels, no final dot); as written if it has none. */
	d = norm == NULL ? xstrdup(name) : suffix ? xasprintf(".%s", norm) : xstrdup(norm);
	free(norm);
	str_lower(d);
	l->names = xreallocarray(l->names, l->count + 1, sizeof(*l->names));
	l->names[l->count++] = d;
}

bool
domain_list_match(const struct domain_list *l, const char *domain)
{
	size_t dlen, i;

	if (domain == NULL)
		return false;
	dlen = strlen(domain);
	for (i = 0; i < l->count; i++) {
		const char *n = l->names[i];
		size_t nlen = strlen(n);

		if (n[0] == '.') {
			/* ".example" matches "x.example", not "example" or "xexample". */
			if (dlen > nlen && str_ieq(domain + dlen - nlen, n))
				return true;
		} else if (str_ieq(domain, n)) {
			return true;
		}
	}
	return false;
}

void
domain_list_release(struct domain_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	l->names = NULL;
	l->count = 0;
}

cables_status
host_list_add(struct host_list *l, const char *spec, struct cables_err *err)
{
	struct host_prefix hp;
	char text[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long bits;
	unsigned int maxbits;

	if (strlcpy_c(text, spec, sizeof(text)) >= sizeof(text))
		return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not an IP address or prefix", spec);
	memset(&hp, 0, sizeof(hp));
	slash = strchr(text, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, text, hp.addr) == 1) {
		hp.family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, text, hp.addr) == 1) {
		hp.family = AF_INET6;
		maxbits = 128;
	} else {
		return cables_fail(err, CABLES_ERR_SYNTAX,
		    "'%s' is not an IP address or prefix (host names are not accepted)", spec);
	}
	bits = maxbits;
	if (slash != NULL) {
		bits = strtoul(slash, &end, 10);
		if (*slash < '0' || *slash > '9' || *end != '\0' || bits > maxbits)
			return cables_fail(err, CABLES_ERR_SYNTAX, "'%s': bad prefix length", spec);
	}
	hp.bits = (unsigned int)bits;
	l->items = xreallocarray(l->items, l->count + 1, sizeof(*l->items));
	l->items[l->count++] = hp;
	return CABLES_OK;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned int bits)
{
	unsigned int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool
host_list_match(const struct host_list *l, const struct sockaddr *sa)
{
	unsigned char addr[16];
	int family;
	size_t i;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
	} else {
		return false;
	}
	for (i = 0; i < l->count; i++)
		if (l->items[i].family == family &&
		    prefix_match(addr, l->items[i].addr, l->items[i].bits))
			return true;
	return false;
}

void
host_list_release(struct host_list *l)
{
	free(l->items);
	l->items = NULL;
	l->count = 0;
}
