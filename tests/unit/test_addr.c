/* test_addr - envelope parsing, normalisation, address/domain checks, domain and host lists. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "addr.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Compare a possibly-NULL result with a possibly-NULL expectation, naming the case. */
static void
check_str(const char *what, const char *input, const char *got, const char *expect)
{
	if (expect == NULL && got == NULL)
		return;
	if (expect == NULL || got == NULL || strcmp(expect, got) != 0)
		fail_msg("%s('%s'): got %s%s%s, expected %s%s%s", what, input,
		    got != NULL ? "'" : "", got != NULL ? got : "NULL", got != NULL ? "'" : "",
		    expect != NULL ? "'" : "", expect != NULL ? expect : "NULL", expect != NULL ? "'" : "");
}

static void
test_envelope_argument_yields_bare_address(void **state)
{
	static const struct { const char *arg, *expect; } cases[] = {
		{ "<bob@b.test>", "bob@b.test" },
		{ "bob@b.test", "bob@b.test" },
		{ "<Bob+lists@B.Test>", "Bob+lists@B.Test" },	/* not normalised here */
		{ "<>", "" },					/* null sender */
		{ "  <bob@b.test>\t", "bob@b.test" },
		{ "\t bob@b.test  ", "bob@b.test" },
		{ "  <>  ", "" },
		{ "<@a.test,@b.test:u@d.test>", "u@d.test" },	/* source route dropped */
		{ "<@a.test:u@d.test>", "u@d.test" },
		{ "@a.test,@b.test:u@d.test", "u@d.test" },
		{ "<@a.test,@b.test>", NULL },			/* route without a mailbox */
		{ "<bob@b.test", NULL },			/* unbalanced */
		{ "<", NULL },
		{ "  <bob@b.test  ", NULL },
		{ "bob@b.test>", NULL },			/* unbalanced the other way */
		{ "<>>", NULL },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *got = addr_from_envelope(cases[i].arg);

		check_str("addr_from_envelope", cases[i].arg, got, cases[i].expect);
		free(got);
	}
}

static void
test_normalize_folds_case_and_strips_subaddress(void **state)
{
	static const struct addr_opts plus = { false, "+" };
	static const struct addr_opts plus_minus = { false, "+-" };
	static const struct addr_opts none = { false, "" };
	static const struct addr_opts sensitive = { true, "+" };
	static const struct {
		const char *addr;
		const struct addr_opts *o;
		const char *expect;
	} cases[] = {
		{ "bob@b.test", &plus, "bob@b.test" },
		{ "Bob@B.Test", &plus, "bob@b.test" },
		{ "BOB@B.TEST", &none, "bob@b.test" },
		{ "Bob@B.Test", &sensitive, "Bob@b.test" },	/* domain folded even so */
		{ "Bob+Lists@B.TEST", &sensitive, "Bob@b.test" },
		{ "bob+lists@b.test", &plus, "bob@b.test" },
		{ "Bob+Lists@B.Test", &plus, "bob@b.test" },
		{ "bob+a+b@b.test", &plus, "bob@b.test" },	/* cut at the first delimiter */
		{ "bob+@b.test", &plus, "bob@b.test" },
		{ "bob-lists@b.test", &plus, "bob-lists@b.test" },	/* '-' not configured */
		{ "bob-lists@b.test", &plus_minus, "bob@b.test" },
		{ "bob+lists@b.test", &plus_minus, "bob@b.test" },
		{ "bob-a+b@b.test", &plus_minus, "bob@b.test" },
		{ "bob@my-host.b.test", &plus_minus, "bob@my-host.b.test" },	/* delimiter in domain */
		{ "bob+lists@b.test", &none, "bob+lists@b.test" },
		{ "+x@b.test", &plus, "+x@b.test" },		/* a leading delimiter is not one */
		{ "+X@B.Test", &plus, "+x@b.test" },
		{ "-x@b.test", &plus_minus, "-x@b.test" },
		/* A quoted dot-atom is the same mailbox as the dot-atom (RFC 5321 4.1.2): no way around policy. */
		{ "\"Bob+x\"@B.Test", &plus, "bob@b.test" },
		{ "\"bob\"@b.test", &plus, "bob@b.test" },
		{ "\"b\\ob\"@b.test", &plus, "bob@b.test" },	/* a quoted-pair of a plain character */
		{ "\"bob.smith\"@b.test", &plus, "bob.smith@b.test" },
		/* Other quoted local parts: bytes kept. */
		{ "\"Bob Smith\"@B.TEST", &plus, "\"Bob Smith\"@b.test" },
		{ "\"a@b\"@C.Test", &plus, "\"a@b\"@c.test" },
		{ "\"bob.\"@b.test", &plus, "\"bob.\"@b.test" },
		{ "\"\"@b.test", &plus, "\"\"@b.test" },
		/* One form of the domain: no final dot, A-labels (IDNA 2008, UTS 46 non-transitional). */
		{ "bob@partner.example.", &plus, "bob@partner.example" },
		{ "bob@Partner.Example.", &plus, "bob@partner.example" },
		{ "bob@b\xc3\xbc" "cher.example", &plus, "bob@xn--bcher-kva.example" },
		{ "bob@B\xc3\x9c" "CHER.example", &plus, "bob@xn--bcher-kva.example" },
		{ "bob@xn--bcher-kva.example", &plus, "bob@xn--bcher-kva.example" },
		{ "bob@XN--BCHER-KVA.example.", &plus, "bob@xn--bcher-kva.example" },
		{ "bob@fa\xc3\x9f.example", &plus, "bob@xn--fa-hia.example" },	/* non-transitional: not fass */
		/* No one form: cannot be classified. */
		{ "bob@[192.0.2.1]", &plus, NULL },		/* an address literal */
		{ "bob@[IPv6:2001:db8::1]", &plus, NULL },
		{ "bob@xn--zz.example", &plus, NULL },		/* not a valid A-label */
		{ "bob@b.test..", &plus, NULL },
		{ "bob@.", &plus, NULL },
		{ "bob@\xff\xfe.example", &plus, NULL },		/* not UTF-8 */
		{ "Bob+x@B.Test", NULL, "bob+x@b.test" },	/* no options: fold only */
		{ "bob", &plus, NULL },
		{ "", &plus, NULL },
		{ "bob@", &plus, NULL },			/* empty domain */
		{ "@b.test", &plus, NULL },			/* empty local part */
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *got = addr_normalize(cases[i].addr, cases[i].o);

		check_str("addr_normalize", cases[i].addr, got, cases[i].expect);
		free(got);
	}
}

static void
test_domain_normalize_gives_one_form(void **state)
{
	static const struct { const char *in, *expect; } cases[] = {
		{ "partner.example", "partner.example" },
		{ "partner.example.", "partner.example" },
		{ "PARTNER.Example", "partner.example" },
		{ "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "a_b.example", "a_b.example" },
		{ "[192.0.2.1]", NULL },
		{ "", NULL },
		{ ".", NULL },
		{ "a..b", NULL },
		{ "xn--zz.example", NULL },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *got = addr_domain_normalize(cases[i].in);

		check_str("addr_domain_normalize", cases[i].in, got, cases[i].expect);
		free(got);
	}
	(void)state;
}

static void
test_domain_is_after_the_last_at(void **state)
{
	const char *bob = "bob@b.test", *quoted = "\"a@x\"@c.test";

	assert_ptr_equal(addr_domain(bob), bob + 4);
	assert_string_equal(addr_domain(quoted), "c.test");
	assert_null(addr_domain("bob"));
	assert_null(addr_domain("bob@"));
	assert_null(addr_domain(""));
	assert_string_equal(addr_domain("@b.test"), "b.test");
}

static void
test_domain_valid_accepts_plausible_names_only(void **state)
{
	static const struct { const char *domain; bool valid; } cases[] = {
		{ "b.test", true },
		{ "B.Test", true },
		{ "a", true },
		{ "mail-1.example_2.org", true },
		{ "xn--bcher-kva.example", true },
		{ "b\xc3\xbc" "cher.example", true },		/* 8-bit UTF-8 allowed */
		{ "123.45.example", true },
		{ "", false },
		{ ".b.test", false },
		{ "b.test.", false },
		{ ".", false },
		{ "b..test", false },
		{ "b test", false },
		{ " b.test", false },
		{ "b.test ", false },
		{ "b\ttest", false },
		{ "b\x01.test", false },
		{ "b.test\n", false },
		{ "b\x7f.test", false },
		{ "b/test", false },
		{ "bob@b.test", false },
		{ "[192.0.2.1]", false },
		{ "b,test", false },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (domain_valid(cases[i].domain) != cases[i].valid)
			fail_msg("domain_valid('%s') should be %s", cases[i].domain,
			    cases[i].valid ? "true" : "false");
}

static void
test_addr_valid_accepts_local_at_domain_only(void **state)
{
	static const struct { const char *addr; bool valid; } cases[] = {
		{ "bob@b.test", true },
		{ "Bob+tag@B.Test", true },
		{ "a.b-c_d=e@x.example", true },
		{ "b\xc3\xb6" "b@b\xc3\xbc" "cher.example", true },	/* 8-bit UTF-8 allowed */
		{ "\"bob\"@b.test", true },
		{ "", false },
		{ "bob", false },
		{ "@b.test", false },
		{ "bob@", false },
		{ "bob smith@b.test", false },
		{ " bob@b.test", false },
		{ "bob\t@b.test", false },
		{ "bob\x01@b.test", false },
		{ "bob\x7f@b.test", false },
		{ "<bob@b.test>", false },
		{ "bob>@b.test", false },
		{ "bob@b..test", false },
		{ "bob@.b.test", false },
		{ "bob@b.test.", false },
		{ "bob@b test", false },
		{ "bob@b.test ", false },
		{ "bob@b\x02.test", false },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (addr_valid(cases[i].addr) != cases[i].valid)
			fail_msg("addr_valid('%s') should be %s", cases[i].addr,
			    cases[i].valid ? "true" : "false");
}

static void
test_domain_list_matches_exact_names_and_dot_suffixes(void **state)
{
	static const struct { const char *domain; bool match; } cases[] = {
		{ "b.test", true },
		{ "B.TEST", true },			/* case-insensitive */
		{ "x.b.test", false },			/* exact entry: no subdomains */
		{ "sub.example", true },
		{ "a.b.EXAMPLE", true },
		{ "example", false },			/* ".example" is not "example" */
		{ "xexample", false },
		{ "sub.xexample", false },
		{ "example.org", false },
		{ "c.test", false },
		{ "", false },
		{ ".example", false },			/* the entry text itself is no subdomain */
	};
	struct domain_list l = { NULL, 0 };

	assert_false(domain_list_match(&l, "b.test"));	/* empty list */
	domain_list_add(&l, "B.Test");
	domain_list_add(&l, ".Example");
	assert_int_equal(l.count, 2);
	assert_string_equal(l.names[0], "b.test");	/* stored lowercase */
	assert_string_equal(l.names[1], ".example");
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (domain_list_match(&l, cases[i].domain) != cases[i].match)
			fail_msg("domain_list_match('%s') should be %s", cases[i].domain,
			    cases[i].match ? "true" : "false");
	assert_false(domain_list_match(&l, NULL));
	/* A U-label entry is stored as its A-label, what normalised recipients carry. */
	domain_list_add(&l, "B\xc3\xbc" "cher.example.");
	assert_string_equal(l.names[2], "xn--bcher-kva.example");
	assert_true(domain_list_match(&l, "xn--bcher-kva.example"));
	domain_list_release(&l);
	assert_int_equal(l.count, 0);
	assert_null(l.names);
	domain_list_release(&l);	/* twice is harmless */
}

/* A sockaddr for a textual IPv4 or IPv6 address. */
static const struct sockaddr *
sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
	} else {
		fail_msg("test bug: '%s' is not an address", text);
	}
	return (const struct sockaddr *)ss;
}

static struct host_list
host_list_of(const char *const *specs, size_t n)
{
	struct host_list l = { NULL, 0 };
	struct cables_err err;

	for (size_t i = 0; i < n; i++)
		if (host_list_add(&l, specs[i], &err) != CABLES_OK)
			fail_msg("host_list_add('%s'): %s", specs[i], err.msg);
	assert_int_equal(l.count, n);
	return l;
}

static void
test_host_list_matches_ipv4_and_ipv6_prefixes(void **state)
{
	static const char *const specs[] = {
		"10.0.0.0/8", "192.0.2.7", "198.51.100.9/32", "192.168.4.0/22",
		"::1", "2001:db8:1::/64", "2001:db8:ff::7/128",
	};
	static const struct { const char *client; bool match; } cases[] = {
		{ "10.0.0.0", true },
		{ "10.1.2.3", true },
		{ "10.255.255.255", true },
		{ "9.255.255.255", false },
		{ "11.0.0.1", false },
		{ "192.0.2.7", true },			/* bare address = /32 */
		{ "192.0.2.8", false },
		{ "198.51.100.9", true },
		{ "198.51.100.8", false },
		{ "192.168.4.0", true },		/* /22: not on a byte boundary */
		{ "192.168.7.255", true },
		{ "192.168.3.255", false },
		{ "192.168.8.0", false },
		{ "::1", true },
		{ "::2", false },
		{ "2001:db8:1::5", true },
		{ "2001:db8:1:0:ffff:ffff:ffff:ffff", true },
		{ "2001:db8:1:1::1", false },
		{ "2001:db8:ff::7", true },
		{ "2001:db8:ff::8", false },
		{ "::ffff:10.9.8.7", true },		/* IPv4-mapped client, IPv4 prefix */
		{ "::ffff:192.0.2.7", true },
		{ "::ffff:11.0.0.1", false },
		{ "::ffff:127.0.0.1", false },
		{ "127.0.0.1", false },			/* ::1 does not cover IPv4 loopback */
	};
	struct host_list l = host_list_of(specs, N_ELEMENTS(specs));
	struct sockaddr_storage ss;

	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (host_list_match(&l, sockaddr_of(cases[i].client, &ss)) != cases[i].match)
			fail_msg("host_list_match(%s) should be %s", cases[i].client,
			    cases[i].match ? "true" : "false");
	assert_false(host_list_match(&l, NULL));
	host_list_release(&l);
	assert_int_equal(l.count, 0);
	assert_null(l.items);
	assert_false(host_list_match(&l, sockaddr_of("10.1.2.3", &ss)));
}

static void
test_host_list_zero_prefix_matches_only_its_family(void **state)
{
	static const char *const any4[] = { "0.0.0.0/0" };
	static const char *const any6[] = { "::/0" };
	struct host_list l4 = host_list_of(any4, 1), l6 = host_list_of(any6, 1);
	struct sockaddr_storage ss;
	struct sockaddr_un sun;

	assert_true(host_list_match(&l4, sockaddr_of("203.0.113.1", &ss)));
	assert_true(host_list_match(&l4, sockaddr_of("255.255.255.255", &ss)));
	assert_true(host_list_match(&l4, sockaddr_of("::ffff:203.0.113.1", &ss)));
	assert_false(host_list_match(&l4, sockaddr_of("::1", &ss)));
	assert_false(host_list_match(&l4, sockaddr_of("2001:db8::1", &ss)));
	assert_true(host_list_match(&l6, sockaddr_of("2001:db8::1", &ss)));
	assert_true(host_list_match(&l6, sockaddr_of("::1", &ss)));
	assert_false(host_list_match(&l6, sockaddr_of("203.0.113.1", &ss)));
	assert_false(host_list_match(&l6, sockaddr_of("::ffff:203.0.113.1", &ss)));

	/* A unix-socket client is no IP client at all. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_false(host_list_match(&l4, (const struct sockaddr *)&sun));
	assert_false(host_list_match(&l6, (const struct sockaddr *)&sun));
	host_list_release(&l4);
	host_list_release(&l6);
}

static void
test_host_list_stores_family_and_prefix_length(void **state)
{
	static const char *const specs[] = { "127.0.0.0/8", "::1", "192.0.2.1", "2001:db8::/32" };
	struct host_list l = host_list_of(specs, N_ELEMENTS(specs));
	static const unsigned char loop4[4] = { 127, 0, 0, 0 };

	assert_int_equal(l.items[0].family, AF_INET);
	assert_int_equal(l.items[0].bits, 8);
	assert_memory_equal(l.items[0].addr, loop4, 4);
	assert_int_equal(l.items[1].family, AF_INET6);
	assert_int_equal(l.items[1].bits, 128);
	assert_int_equal(l.items[1].addr[15], 1);
	assert_int_equal(l.items[2].family, AF_INET);
	assert_int_equal(l.items[2].bits, 32);
	assert_int_equal(l.items[3].family, AF_INET6);
	assert_int_equal(l.items[3].bits, 32);
	host_list_release(&l);
}

static void
test_host_list_rejects_bad_specs(void **state)
{
	static const struct { const char *spec, *reason; } cases[] = {
		{ "localhost", "'localhost' is not an IP address or prefix (host names are not accepted)" },
		{ "mail.example.com", "'mail.example.com' is not an IP address or prefix (host names are not accepted)" },
		{ "mail.example.com/24", "'mail.example.com/24' is not an IP address or prefix" },
		{ "10.0.0", "'10.0.0' is not an IP address or prefix" },
		{ "256.0.0.1", "'256.0.0.1' is not an IP address or prefix" },
		{ "", "'' is not an IP address or prefix" },
		{ "/8", "'/8' is not an IP address or prefix" },
		{ "1.2.3.4:25", "'1.2.3.4:25' is not an IP address or prefix" },
		{ "2001:db8:::1", "'2001:db8:::1' is not an IP address or prefix" },
		{ "10.0.0.0/33", "'10.0.0.0/33': bad prefix length" },
		{ "10.0.0.0/320", "'10.0.0.0/320': bad prefix length" },
		{ "::1/129", "'::1/129': bad prefix length" },
		{ "10.0.0.0/", "'10.0.0.0/': bad prefix length" },
		{ "10.0.0.0/8x", "'10.0.0.0/8x': bad prefix length" },
		{ "10.0.0.0/-1", "'10.0.0.0/-1': bad prefix length" },
		{ "10.0.0.0/8/8", "'10.0.0.0/8/8': bad prefix length" },
		{ "2001:db8::/64/", "'2001:db8::/64/': bad prefix length" },
		{ "0000000000000000000000000000000000000000000000000000000000001.2.3.4",
		    "is not an IP address or prefix" },		/* longer than any address */
	};
	struct host_list l = { NULL, 0 };
	struct cables_err err;

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		cables_status st;

		err.msg[0] = '\0';
		st = host_list_add(&l, cases[i].spec, &err);
		if (st != CABLES_ERR_SYNTAX || strstr(err.msg, cases[i].reason) == NULL)
			fail_msg("host_list_add('%s'): status %d, reason '%s', expected '%s'",
			    cases[i].spec, st, err.msg, cases[i].reason);
		assert_int_equal(l.count, 0);
		assert_int_equal(host_list_add(&l, cases[i].spec, NULL), CABLES_ERR_SYNTAX);
	}
	/* The longest valid forms still fit. */
	assert_int_equal(host_list_add(&l, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", &err), CABLES_OK);
	assert_int_equal(host_list_add(&l, "0.0.0.0/0", &err), CABLES_OK);
	assert_int_equal(host_list_add(&l, "::/0", &err), CABLES_OK);
	assert_int_equal(l.count, 3);
	host_list_release(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_argument_yields_bare_address),
		cmocka_unit_test(test_normalize_folds_case_and_strips_subaddress),
		cmocka_unit_test(test_domain_normalize_gives_one_form),
		cmocka_unit_test(test_domain_is_after_the_last_at),
		cmocka_unit_test(test_domain_valid_accepts_plausible_names_only),
		cmocka_unit_test(test_addr_valid_accepts_local_at_domain_only),
		cmocka_unit_test(test_domain_list_matches_exact_names_and_dot_suffixes),
		cmocka_unit_test(test_host_list_matches_ipv4_and_ipv6_prefixes),
		cmocka_unit_test(test_host_list_zero_prefix_matches_only_its_family),
		cmocka_unit_test(test_host_list_stores_family_and_prefix_length),
		cmocka_unit_test(test_host_list_rejects_bad_specs),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
