/*
 * fuzz_config - cables.conf parsing: config_parse over the input as a file's
 * text, the milter's checks, and, when it parses, the lookups the milter
 * makes with it (policy attributes, local domains, internal hosts).
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <netdb.h>
#include <sys/socket.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

/* The client addresses looked up in InternalHosts, resolved once. */
static const char *const hosts[] = { "127.0.0.1", "10.1.2.3", "192.0.2.7", "::1", "2001:db8::42",
    "::ffff:127.0.0.1" };
#define NHOSTS (sizeof(hosts) / sizeof(hosts[0]))
static struct sockaddr_storage host_addrs[NHOSTS];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (size_t i = 0; i < NHOSTS; i++) {
		struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *res;
		int rc = getaddrinfo(hosts[i], NULL, &hints, &res);

		if (rc != 0)
			fuzz_die("%s: %s", hosts[i], gai_strerror(rc));
		memcpy(&host_addrs[i], res->ai_addr, res->ai_addrlen);
		freeaddrinfo(res);
	}
	return 0;
}

static void
lookups(const struct config *c)
{
	static const char *const addrs[] = { "bob@a.test", "Alice+Tag@B.Test", "x@deep.sub.b.test", "\"Q x\"@c.test",
	    "postmaster", "a@example.org", "newsletter@partner.example" };

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		char *norm = addr_normalize(addrs[i], &c->addr);
		const struct policy_entry *e;

		/* The milter looks up recipients that are not addresses too (norm NULL). */
		for (int a = 0; a < PA_COUNT; a++) {
			int v = policy_get(&c->policy, norm, (enum policy_attr)a, &e);

			(void)policy_value_name((enum policy_attr)a, v);
		}
		if (norm != NULL)
			(void)domain_list_match(&c->local_domains, addr_domain(norm));
		free(norm);
	}
	for (size_t i = 0; i < NHOSTS; i++)
		(void)host_list_match(&c->internal_hosts, (const struct sockaddr *)&host_addrs[i]);
	(void)cipher_name(c->cipher);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cables_err err;
	struct config *c = config_parse("fuzz.conf", (const char *)data, size, &err);

	if (c == NULL) {
		if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
			abort();	/* an unterminated error message */
		return 0;
	}
	(void)config_check_milter(c, &err);
	lookups(c);
	config_free(c);
	return 0;
}
