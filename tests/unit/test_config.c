/* test_config - the cables.conf parser: values, defaults, every error, files, docs in step. */
#include "autoconfig.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config.h"
#include "hp.h"
#include "pad.h"
#include "helpers.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Parse text as "t.conf"; fails the test with the error when it does not parse. */
static struct config *
parse_ok(const char *text)
{
	struct cables_err err;
	struct config *c;

	err.msg[0] = '\0';
	c = config_parse("t.conf", text, strlen(text), &err);
	if (c == NULL)
		fail_msg("config_parse(\"%s\"): %s", text, err.msg);
	return c;
}

static bool
host_matches(const struct host_list *l, const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		fail_msg("test bug: '%s' is not an address", text);
	return host_list_match(l, (const struct sockaddr *)&ss);
}

/* Write text to dir/name; returns the path (caller frees). */
static char *
write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Every field of a configuration holding only the built-in defaults. */
static void
assert_default_values(const struct config *c)
{
	assert_string_equal(c->socket, "unix:/run/cables/milter.sock");
	assert_int_equal(c->socket_mode, 0660);
	assert_null(c->socket_group);
	assert_null(c->pid_file);
	assert_string_equal(c->key_store, "/var/lib/cables/keys.db");
	assert_string_equal(c->key_store_key, "/etc/cables/keystore.key");
	{
		char host[256] = "";

		/* AuthservID: the host name when not set. */
		gethostname(host, sizeof(host));
		assert_string_equal(c->authserv_id, host[0] != '\0' ? host : "localhost");
	}
	assert_int_equal(c->local_domains.count, 0);
	assert_int_equal(c->internal_hosts.count, 2);
	assert_true(host_matches(&c->internal_hosts, "127.0.0.1"));
	assert_true(host_matches(&c->internal_hosts, "127.255.0.9"));
	assert_true(host_matches(&c->internal_hosts, "::1"));
	assert_false(host_matches(&c->internal_hosts, "128.0.0.1"));
	assert_false(host_matches(&c->internal_hosts, "::2"));
	assert_int_equal(c->policy.dflt[PA_POLICY], POLICY_ENCRYPT);
	assert_int_equal(c->policy.count, 0);
	assert_int_equal(c->policy.dflt[PA_SELF], 0);
	assert_int_equal(c->policy.dflt[PA_SIGN], 0);
	assert_int_equal(c->policy.dflt[PA_FORMAT], FORMAT_AUTO);
	assert_int_equal(c->policy.dflt[PA_ON_DECRYPT_ERROR], ACTION_ACCEPT);
	assert_null(c->trust_anchors);
	assert_true(c->harvest_certificates);
	assert_int_equal(c->cipher, CIPHER_AES256_CBC);
	assert_int_equal(c->rsa_padding, RSA_PAD_PKCS1);
	assert_int_equal(c->policy.dflt[PA_ON_KEY_NOT_FOUND], ACTION_HOLD);
	assert_int_equal(c->policy.dflt[PA_HOLD_NOTICE], 1);
	assert_int_equal(c->hold_time_ms, 7UL * 24 * 3600 * 1000);
	assert_string_equal(c->hold_address, "postmaster");
	assert_string_equal(c->mail_command, "/usr/sbin/sendmail");
	assert_int_equal(c->policy.dflt[PA_ON_INTERNAL_ERROR], ACTION_TEMPFAIL);
	assert_string_equal(c->log_facility, "mail");
	assert_null(c->log_file);
	assert_string_equal(c->temp_dir, "/var/tmp");
	assert_string_equal(c->gnupg_home, "/var/lib/cables/gnupg");
	assert_int_equal(c->format_preference, PREFER_SMIME);
	assert_string_equal(c->keyd_socket, "/run/cables-keyd/keyd.sock");
	assert_string_equal(c->keyholder_socket, "/run/cables-keyholder/keyholder.sock");
	assert_int_equal(c->keyholder_clients, 128);
	assert_int_equal(c->keyholder_idle_timeout_ms, 300000);
	assert_null(c->resolver);
	assert_string_equal(c->dnssec_anchor, "/usr/share/dns/root.ds");
	assert_int_equal(c->dnssec, DNSSEC_REQUIRE);
	assert_int_equal(c->lookup_timeout_ms, 5000);
	assert_int_equal(c->cache_min_ttl_ms, 60000);
	assert_int_equal(c->downgrade_memory_s, 90 * 86400);
	assert_null(c->admin_address);
	assert_string_equal(c->mail_command, "/usr/sbin/sendmail");
	assert_int_equal(c->cache_max_ttl_ms, 86400000);
	assert_null(c->reinject_to);
	assert_string_equal(c->reinject_key, "/etc/cables/reinject.key");
	assert_null(c->user);
	assert_int_equal(c->max_message_size, 104857600);
	assert_string_equal(c->addr.delimiters, "+");
	assert_false(c->addr.local_case_sensitive);
}

static void
test_policy_attributes_by_entry(void **state)
{
	const struct policy_entry *e;
	struct config *c = parse_ok("Policy a.test Sign=yes\nSign no\nPolicy CEO@A.test Sign=no Format=smime\n"
	    "Policy .lab.a.test Sign=yes\nPolicy b.test require On-KeyNotFound=reject On-DecryptError=quarantine\n"
	    "Policy b.test EncryptToSelf=yes\n");

	assert_int_equal(c->policy.dflt[PA_SIGN], 0);
	assert_int_equal(c->policy.dflt_line[PA_SIGN], 2);
	assert_int_equal(policy_get(&c->policy, "alice@a.test", PA_SIGN, &e), 1);
	assert_int_equal(e->line[PA_SIGN], 1);
	assert_int_equal(policy_get(&c->policy, "ceo@a.test", PA_SIGN, &e), 0);
	assert_int_equal(e->line[PA_SIGN], 3);
	/* An attribute the address entry does not set comes from the next most specific entry. */
	assert_int_equal(policy_get(&c->policy, "ceo@a.test", PA_FORMAT, NULL), FORMAT_SMIME);
	assert_int_equal(policy_get(&c->policy, "x@a.test", PA_FORMAT, &e), FORMAT_AUTO);
	assert_null(e);
	assert_int_equal(policy_get(&c->policy, "x@b.lab.a.test", PA_SIGN, NULL), 1);
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_SIGN, &e), 0);
	assert_null(e);
	/* Two lines for one target merge. */
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_POLICY, NULL), POLICY_REQUIRE);
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_ON_KEY_NOT_FOUND, NULL), ACTION_REJECT);
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_ON_DECRYPT_ERROR, NULL), ACTION_QUARANTINE);
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_SELF, &e), 1);
	assert_int_equal(e->line[PA_SELF], 6);
	config_free(c);
}

static void
test_defaults_are_the_documented_values(void **state)
{
	struct config *c = config_defaults();

	assert_string_equal(c->path, "(defaults)");
	assert_default_values(c);
	config_free(c);
	config_free(NULL);
}

static void
test_empty_text_gives_defaults_named_after_the_file(void **state)
{
	static const char *const texts[] = { "", "\n", "# nothing here\n\n   \n\t\n" };

	for (size_t i = 0; i < N_ELEMENTS(texts); i++) {
		struct config *c = parse_ok(texts[i]);

		assert_string_equal(c->path, "t.conf");
		assert_default_values(c);
		config_free(c);
	}
}

static void
test_key_table_is_complete_and_its_defaults_parse(void **state)
{
	static const char *const expected[] = {
		"Socket", "SocketMode", "SocketGroup", "User", "PidFile", "KeyStore", "KeyStoreKey",
		"LocalDomains", "InternalHosts", "DefaultPolicy", "Format", "Sign", "SenderLogins", "SignUnauthenticated", "EncryptToSelf",
		"On-KeyNotFound", "On-InternalError", "On-DecryptError", "On-KeydError", "On-KeyChange",
		"HeaderProtection", "Padding", "ForwardSecrecy", "HoldNotice", "HoldTime", "HoldAddress", "HoldMaxMessages", "HoldMaxBytes", "HoldMaxMessagesPerSender",
		"HoldMaxBytesPerSender", "MailCommand", "Policy", "TrustAnchors", "HarvestCertificates", "Cipher", "RSAPadding", "LogFacility",
		"LogFile", "TempDir", "GnuPGHome", "FormatPreference", "ReinjectTo", "ReinjectDaemonName", "ReinjectKey", "ExitDaemonName", "MaxMessageSize", "KeydSocket", "KeydPidFile", "KeydAdminSocket", "AdminGroup", "KeydUser",
		"KeyholderSocket", "KeyholderUser", "KeyholderLogFile", "KeyholderRateLimit", "KeyholderSignRateLimit",
		"KeyholderDecryptRateLimit", "KeyholderFailureRateLimit", "KeyholderClients",
		"KeyholderIdleTimeout", "EpochKeyLifetime", "EpochKeyGrace", "Resolver",
		"DNSSECTrustAnchor", "DNSSEC", "LookupTimeout", "UnresponsiveTime", "DowngradeMemory", "AdminAddress", "CacheMinTTL", "CacheMaxTTL", "RecipientDelimiter", "LocalPartCaseSensitive",
		"ExchangeListen", "ExchangeCertificate", "ExchangeCertificateKey", "ExchangeKey", "ExchangeCAFile", "ExchangeRateLimit", "ExchangeAnonymousAddresses", "ExchangeAnonymousRateLimit", "KeyExchange",
		"Peer", "WKD", "MetricsListen", "KeydMetricsListen", "AuthservID",
	};
	size_t n = config_key_count();

	assert_int_equal(n, N_ELEMENTS(expected));
	for (size_t i = 0; i < n; i++) {
		const char *name = config_key_name(i), *dflt = config_key_default(i);

		assert_non_null(name);
		assert_string_equal(name, expected[i]);
		for (size_t j = 0; j < i; j++)
			if (str_ieq(name, config_key_name(j)))
				fail_msg("key '%s' listed twice", name);
		/* A default written in a file means the same as leaving the key out. */
		if (dflt != NULL) {
			char *text = xasprintf("%s %s\n", name, dflt);
			struct config *c = parse_ok(text);

			assert_default_values(c);
			config_free(c);
			free(text);
		}
	}
	assert_null(config_key_name(n));
	assert_null(config_key_default(n));
	assert_string_equal(config_key_default(34), "aes256-cbc");	/* Cipher */
	assert_null(config_key_default(2));				/* SocketGroup */
	assert_null(config_key_default(7));				/* LocalDomains */
	assert_null(config_key_default(41));				/* ReinjectTo */
	assert_string_equal(fail_action_name(ACTION_TEMPFAIL), "tempfail");
	assert_string_equal(fail_action_name(ACTION_REJECT), "reject");
	assert_string_equal(fail_action_name(ACTION_ACCEPT), "accept");
	assert_string_equal(cipher_name(CIPHER_AES256_CBC), "aes256-cbc");
	assert_string_equal(cipher_name(CIPHER_AES256_GCM), "aes256-gcm");
}

static void
test_comments_and_blank_lines_are_ignored(void **state)
{
	const char *text =
	    "# Cables configuration\n"
	    "\n"
	    "   # an indented comment\n"
	    "\t#Cipher bogus\n"
	    "   \t  \n"
	    "\r\n"
	    "Cipher aes256-gcm\n"
	    "#MaxMessageSize nonsense\n";
	struct config *c = parse_ok(text);
	struct cables_err err;

	assert_int_equal(c->cipher, CIPHER_AES256_GCM);
	assert_int_equal(c->max_message_size, 104857600);
	config_free(c);

	/* Skipped lines still count for the line number in errors. */
	text = "# one\n\n   # three\nBogus x\n";
	assert_null(config_parse("t.conf", text, strlen(text), &err));
	assert_string_equal(err.msg, "t.conf:4: unknown key 'Bogus'");
}

static void
test_keys_are_case_insensitive(void **state)
{
	struct config *c = parse_ok(
	    "cipher aes256-gcm\n"
	    "RSAPADDING oaep\n"
	    "on-keynotfound reject\n"
	    "ON-INTERNALERROR accept\n"
	    "maxmessagesize 1K\n"
	    "localdomains b.test\n"
	    "defaultpolicy require\n"
	    "POLICY c.test never\n");

	assert_int_equal(c->cipher, CIPHER_AES256_GCM);
	assert_int_equal(c->rsa_padding, RSA_PAD_OAEP);
	assert_int_equal(c->policy.dflt[PA_ON_KEY_NOT_FOUND], ACTION_REJECT);
	assert_int_equal(c->policy.dflt[PA_ON_INTERNAL_ERROR], ACTION_ACCEPT);
	assert_int_equal(c->max_message_size, 1024);
	assert_true(domain_list_match(&c->local_domains, "b.test"));
	assert_int_equal(c->policy.dflt[PA_POLICY], POLICY_REQUIRE);
	assert_int_equal(policy_get(&c->policy, "x@c.test", PA_POLICY, NULL), POLICY_NEVER);
	config_free(c);

	/* Choice words are case-insensitive too. */
	c = parse_ok("Cipher AES256-GCM\nDefaultPolicy Never\nEncryptToSelf YES\n");
	assert_int_equal(c->cipher, CIPHER_AES256_GCM);
	assert_int_equal(c->policy.dflt[PA_POLICY], POLICY_NEVER);
	assert_int_equal(c->policy.dflt[PA_SELF], 1);
	config_free(c);
}

/* KeyStore: a path (SQLite) or a PostgreSQL URL, kept as written (the password too: libpq needs it). */
static void
test_key_store_path_or_postgresql_url(void **state)
{
	static const char *const ok[] = { "/var/lib/cables/keys.db", "postgresql://cables@db.example/cables",
	    "postgres://cables:pw@127.0.0.1:5432/cables?sslmode=verify-full", "PostgreSQL://h/d" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *text = xasprintf("KeyStore %s\n", ok[i]);
		struct config *c = parse_ok(text);

		assert_string_equal(c->key_store, ok[i]);
		config_free(c);
		free(text);
	}
}

static void
test_keys_and_values_are_trimmed(void **state)
{
	struct config *c = parse_ok(
	    "   Cipher \t  aes256-gcm  \t\n"
	    "KeyStore\t/srv/cables/keys.db   \r\n"
	    "SocketGroup    postfix  \n"
	    "\tPolicy   b.test \t require  \n"
	    "LogFacility local3\r\n"
	    "TempDir /srv/tmp");		/* last line without a newline */

	assert_int_equal(c->cipher, CIPHER_AES256_GCM);
	assert_string_equal(c->key_store, "/srv/cables/keys.db");
	assert_string_equal(c->socket_group, "postfix");
	assert_int_equal(c->policy.count, 1);
	assert_string_equal(c->policy.entries[0].match, "b.test");
	assert_int_equal(c->policy.entries[0].value[PA_POLICY], POLICY_REQUIRE);
	assert_int_equal(c->policy.entries[0].line[PA_POLICY], 4);
	assert_string_equal(c->log_facility, "local3");
	assert_string_equal(c->temp_dir, "/srv/tmp");
	config_free(c);
}

static void
test_sizes_take_k_m_g_suffixes(void **state)
{
	static const struct { const char *value; size_t expect; } cases[] = {
		{ "0", 0 },			/* unlimited */
		{ "1", 1 },
		{ "12345", 12345 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "64K", 65536 },
		{ "2M", 2097152 },
		{ "2m", 2097152 },
		{ "100M", 104857600 },
		{ "1G", 1073741824 },
		{ "3g", (size_t)3 * 1073741824 },
		{ "007", 7 },
#if SIZE_MAX > 0xffffffffu
		{ "17179869183G", (size_t)17179869183ULL * 1073741824 },	/* the largest G */
		{ "18446744073709551615", SIZE_MAX },
#endif
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *text = xasprintf("MaxMessageSize %s\n", cases[i].value);
		struct config *c = parse_ok(text);

		if (c->max_message_size != cases[i].expect)
			fail_msg("MaxMessageSize %s: got %zu, expected %zu", cases[i].value,
			    c->max_message_size, cases[i].expect);
		config_free(c);
		free(text);
	}
}

static void
test_bools_accept_yes_no_words(void **state)
{
	static const struct { const char *value; bool expect; } cases[] = {
		{ "yes", true }, { "YES", true }, { "true", true }, { "on", true }, { "1", true },
		{ "no", false }, { "No", false }, { "false", false }, { "off", false }, { "0", false },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *text = xasprintf("EncryptToSelf %s\nLocalPartCaseSensitive %s\n",
		    cases[i].value, cases[i].value);
		struct config *c = parse_ok(text);

		if (c->policy.dflt[PA_SELF] != (int)cases[i].expect || c->addr.local_case_sensitive != cases[i].expect)
			fail_msg("'%s' should be %s", cases[i].value, cases[i].expect ? "true" : "false");
		config_free(c);
		free(text);
	}
}

static void
test_string_values_of_each_type(void **state)
{
	static const char *const sockets[] = {
		"unix:/run/cables/milter.sock", "local:/var/spool/postfix/cables.sock",
		"inet:8891", "inet:8891@localhost", "inet:1@127.0.0.1", "inet:65535@host",
		"inet6:8891@[::1]", "inet6:8891",
	};
	struct config *c;

	for (size_t i = 0; i < N_ELEMENTS(sockets); i++) {
		char *text = xasprintf("Socket %s\n", sockets[i]);

		c = parse_ok(text);
		assert_string_equal(c->socket, sockets[i]);
		config_free(c);
		free(text);
	}

	c = parse_ok("PidFile /run/cables/milter.pid\nLogFile /var/log/cables.log\n"
	    "SocketMode 0600\nLogFacility LOCAL7\nRecipientDelimiter +-\n"
	    "KeyStoreKey /etc/cables/other.key\nDefaultPolicy never\n");
	assert_string_equal(c->pid_file, "/run/cables/milter.pid");
	assert_string_equal(c->log_file, "/var/log/cables.log");
	assert_int_equal(c->socket_mode, 0600);
	assert_string_equal(c->log_facility, "LOCAL7");
	assert_string_equal(c->addr.delimiters, "+-");
	assert_string_equal(c->key_store_key, "/etc/cables/other.key");
	assert_int_equal(c->policy.dflt[PA_POLICY], POLICY_NEVER);
	config_free(c);

	c = parse_ok("AuthservID mx.b.test\n");
	assert_string_equal(c->authserv_id, "mx.b.test");
	config_free(c);

	c = parse_ok("SocketMode 660\nRecipientDelimiter +-=~._%!$&*/|{}\n");
	assert_int_equal(c->socket_mode, 0660);	/* read as octal even without the 0 */
	assert_string_equal(c->addr.delimiters, "+-=~._%!$&*/|{}");	/* 15: the most that fits */
	config_free(c);

	c = parse_ok("SocketMode 0\nCipher aes256-cbc\nRSAPadding pkcs1\nOn-KeyNotFound tempfail\n");
	assert_int_equal(c->socket_mode, 0);
	assert_int_equal(c->cipher, CIPHER_AES256_CBC);
	assert_int_equal(c->rsa_padding, RSA_PAD_PKCS1);
	assert_int_equal(c->policy.dflt[PA_ON_KEY_NOT_FOUND], ACTION_TEMPFAIL);
	config_free(c);

	c = parse_ok("MailCommand /usr/sbin/sendmail -C /etc/postfix-out\nHoldTime 2h\nHoldAddress held@a.test\n"
	    "HoldNotice no\nPolicy b.test On-KeyNotFound=hold\n");
	assert_string_equal(c->mail_command, "/usr/sbin/sendmail -C /etc/postfix-out");
	assert_int_equal(c->hold_time_ms, 2UL * 3600 * 1000);
	assert_string_equal(c->hold_address, "held@a.test");
	assert_int_equal(c->policy.dflt[PA_HOLD_NOTICE], 0);
	assert_int_equal(policy_get(&c->policy, "x@b.test", PA_ON_KEY_NOT_FOUND, NULL), ACTION_HOLD);
	config_free(c);
}

static void
test_none_clears_optional_values(void **state)
{
	struct config *c = parse_ok("PidFile none\nLogFile NONE\nSocketGroup None\nRecipientDelimiter none\n");

	assert_null(c->pid_file);
	assert_null(c->log_file);
	assert_null(c->socket_group);
	assert_string_equal(c->addr.delimiters, "");
	config_free(c);
}

static void
test_list_values_split_on_commas_and_whitespace(void **state)
{
	struct config *c = parse_ok(
	    "LocalDomains a.test, B.Test\t.c.test,,d.test ,e.test\n"
	    "InternalHosts 10.0.0.0/8,192.0.2.1 \t2001:db8::/32 , ::1\n"
	    "LocalDomains f.test\n");	/* a repeated list key adds to the list */
	static const char *const domains[] = { "a.test", "b.test", ".c.test", "d.test", "e.test", "f.test" };

	assert_int_equal(c->local_domains.count, N_ELEMENTS(domains));
	for (size_t i = 0; i < N_ELEMENTS(domains); i++)
		assert_string_equal(c->local_domains.names[i], domains[i]);
	assert_true(domain_list_match(&c->local_domains, "x.c.test"));
	assert_false(domain_list_match(&c->local_domains, "c.test"));
	assert_int_equal(c->internal_hosts.count, 4);
	assert_true(host_matches(&c->internal_hosts, "10.9.9.9"));
	assert_true(host_matches(&c->internal_hosts, "192.0.2.1"));
	assert_true(host_matches(&c->internal_hosts, "2001:db8:5::1"));
	assert_true(host_matches(&c->internal_hosts, "::1"));
	assert_false(host_matches(&c->internal_hosts, "192.0.2.2"));
	config_free(c);
}

static void
test_internal_hosts_in_the_file_replace_the_default(void **state)
{
	struct config *c = parse_ok("InternalHosts 192.0.2.0/24\n");

	assert_int_equal(c->internal_hosts.count, 1);
	assert_true(host_matches(&c->internal_hosts, "192.0.2.77"));
	assert_false(host_matches(&c->internal_hosts, "127.0.0.1"));
	assert_false(host_matches(&c->internal_hosts, "::1"));
	config_free(c);

	/* The second line of a repeated key adds; only the first one replaces. */
	c = parse_ok("InternalHosts 192.0.2.0/24\n# more\nInternalHosts 198.51.100.0/24\n");
	assert_int_equal(c->internal_hosts.count, 2);
	assert_true(host_matches(&c->internal_hosts, "192.0.2.77"));
	assert_true(host_matches(&c->internal_hosts, "198.51.100.1"));
	assert_false(host_matches(&c->internal_hosts, "127.0.0.1"));
	config_free(c);
}

static void
test_policy_lines_build_the_policy_table(void **state)
{
	const struct policy_entry *rule;
	struct config *c = parse_ok(
	    "Policy b.test require\n"
	    "DefaultPolicy never\n"
	    "Policy Bob@B.Test encrypt\n"
	    "\n"
	    "Policy .c.test REQUIRE\n");

	assert_int_equal(c->policy.dflt[PA_POLICY], POLICY_NEVER);
	assert_int_equal(c->policy.count, 3);
	assert_int_equal(policy_get(&c->policy, "carol@b.test", PA_POLICY, &rule), POLICY_REQUIRE);
	assert_int_equal(rule->line[PA_POLICY], 1);
	assert_int_equal(policy_get(&c->policy, "bob@b.test", PA_POLICY, &rule), POLICY_ENCRYPT);
	assert_int_equal(rule->line[PA_POLICY], 3);
	assert_int_equal(policy_get(&c->policy, "dave@x.c.test", PA_POLICY, &rule), POLICY_REQUIRE);
	assert_int_equal(rule->line[PA_POLICY], 5);
	assert_int_equal(policy_get(&c->policy, "erin@d.test", PA_POLICY, &rule), POLICY_NEVER);
	assert_null(rule);
	config_free(c);
}

/*
 * With LocalPartCaseSensitive, "Bob" and "bob" are different mailboxes: a
 * Policy for one must decide for that one, matched against the same
 * normalised form the milter looks up (addr_normalize with the config's
 * options), wherever LocalPartCaseSensitive appears in the file.
 */
static void
test_case_sensitive_local_parts_keep_policy_targets_apart(void **state)
{
	const struct policy_entry *rule;
	struct config *c = parse_ok(
	    "Policy Bob@b.test require\n"
	    "Policy alice@b.test never\n"
	    "LocalPartCaseSensitive yes\n");
	char *bob = addr_normalize("Bob@B.Test", &c->addr);
	char *lower_bob = addr_normalize("bob@b.test", &c->addr);
	char *alice = addr_normalize("alice@b.test", &c->addr);
	enum enc_policy for_bob, for_lower_bob, for_alice;
	unsigned int bob_line, lower_bob_line, alice_line;
	bool bob_folded = strcmp(bob, "Bob@b.test") != 0;

	for_bob = policy_get(&c->policy, bob, PA_POLICY, &rule);
	bob_line = rule != NULL ? rule->line[PA_POLICY] : 0;
	for_lower_bob = policy_get(&c->policy, lower_bob, PA_POLICY, &rule);
	lower_bob_line = rule != NULL ? rule->line[PA_POLICY] : 0;
	for_alice = policy_get(&c->policy, alice, PA_POLICY, &rule);
	alice_line = rule != NULL ? rule->line[PA_POLICY] : 0;
	free(bob);
	free(lower_bob);
	free(alice);
	config_free(c);

	assert_false(bob_folded);
	if (for_bob != POLICY_REQUIRE || bob_line != 1)
		fail_msg("'Policy Bob@b.test require' does not decide for Bob@b.test "
		    "(got %s from line %u, 0 = default)", policy_name(for_bob), bob_line);
	if (for_lower_bob != POLICY_ENCRYPT || lower_bob_line != 0)
		fail_msg("'Policy Bob@b.test require' decides for the different mailbox bob@b.test "
		    "(got %s from line %u)", policy_name(for_lower_bob), lower_bob_line);
	assert_int_equal(for_alice, POLICY_NEVER);
	assert_int_equal(alice_line, 2);
}

/* Each case fails to parse with exactly this "file:line: detail" message. */
static const struct {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *expect;
} bad_configs[] = {
	/* Unknown keys and missing values. */
	{ "Ciper aes256-cbc\n", 0, "t.conf:1: unknown key 'Ciper'" },
	{ "Cipher aes256-cbc\n\n# x\nFoo=bar baz\n", 0, "t.conf:4: unknown key 'Foo=bar'" },
	{ "Cipher=aes256-cbc\n", 0, "t.conf:1: unknown key 'Cipher=aes256-cbc'" },
	{ "Cipher\n", 0, "t.conf:1: Cipher: missing value" },
	{ "\ncipher   \t\r\n", 0, "t.conf:2: Cipher: missing value" },
	/* An authserv-id that would need quoting could be written to look like a result. */
	{ "AuthservID mx.b.test; smime=pass\n", 0, "t.conf:1: AuthservID: 'mx.b.test; smime=pass' is not a single token" },
	{ "AuthservID \"mx\"\n", 0, "t.conf:1: AuthservID: '\"mx\"' is not a single token" },
	{ "AuthservID a@b\n", 0, "t.conf:1: AuthservID: 'a@b' is not a single token" },
	{ "Policy", 0, "t.conf:1: Policy: missing value" },
	/* A non-repeatable key given twice. */
	{ "Cipher aes256-cbc\n\nCipher aes256-gcm\n", 0, "t.conf:3: Cipher: already set at line 1" },
	{ "# k\nKeyStore /a\nkeystore /b\n", 0, "t.conf:3: KeyStore: already set at line 2" },
	{ "DefaultPolicy never\nPolicy b.test require\nDefaultPolicy require\n", 0,
	    "t.conf:3: DefaultPolicy: already set at line 1" },
	{ "PidFile none\nPidFile /run/x.pid\n", 0, "t.conf:2: PidFile: already set at line 1" },
	/* Paths. */
	{ "KeyStore var/lib/keys.db\n", 0, "t.conf:1: KeyStore: not an absolute path or a postgresql:// URL" },
	/* The value is not echoed: a URL may carry a password. */
	{ "KeyStore mysql://u:secret@h/db\n", 0, "t.conf:1: KeyStore: not an absolute path or a postgresql:// URL" },
	{ "KeyStoreKey ~/keystore.key\n", 0, "t.conf:1: KeyStoreKey: '~/keystore.key' is not an absolute path" },
	{ "TempDir tmp\n", 0, "t.conf:1: TempDir: 'tmp' is not an absolute path" },
	{ "TempDir none\n", 0, "t.conf:1: TempDir: 'none' is not an absolute path" },
	{ "PidFile run/x.pid\n", 0, "t.conf:1: PidFile: 'run/x.pid' is not an absolute path or 'none'" },
	{ "LogFile cables.log\n", 0, "t.conf:1: LogFile: 'cables.log' is not an absolute path or 'none'" },
	/* Sockets. */
	{ "Socket /run/m.sock\n", 0, "t.conf:1: Socket: '/run/m.sock' is not unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST" },
	{ "Socket unix:run/m.sock\n", 0, "t.conf:1: Socket: 'unix:run/m.sock' is not unix:/PATH" },
	{ "Socket unix:\n", 0, "t.conf:1: Socket: 'unix:' is not unix:/PATH" },
	{ "Socket local:m.sock\n", 0, "t.conf:1: Socket: 'local:m.sock' is not unix:/PATH" },
	{ "Socket inet:\n", 0, "t.conf:1: Socket: 'inet:' is not unix:/PATH" },
	{ "Socket inet:0@localhost\n", 0, "t.conf:1: Socket: 'inet:0@localhost' is not" },
	{ "Socket inet:65536@localhost\n", 0, "t.conf:1: Socket: 'inet:65536@localhost' is not" },
	{ "Socket inet:-1@localhost\n", 0, "t.conf:1: Socket: 'inet:-1@localhost' is not" },
	{ "Socket inet:8891@\n", 0, "t.conf:1: Socket: 'inet:8891@' is not" },
	{ "Socket inet:smtp@localhost\n", 0, "t.conf:1: Socket: 'inet:smtp@localhost' is not" },
	{ "Socket inet:8891x\n", 0, "t.conf:1: Socket: 'inet:8891x' is not" },
	{ "Socket inet6:@::1\n", 0, "t.conf:1: Socket: 'inet6:@::1' is not" },
	{ "Socket tcp:8891@localhost\n", 0, "t.conf:1: Socket: 'tcp:8891@localhost' is not" },
	{ "Socket inet:+8891@localhost\n", 0, "t.conf:1: Socket: 'inet:+8891@localhost' is not" },
	{ "Socket inet: 8891@localhost\n", 0, "t.conf:1: Socket: 'inet: 8891@localhost' is not" },
	/* Booleans. */
	{ "EncryptToSelf maybe\n", 0, "t.conf:1: EncryptToSelf: 'maybe' is not yes or no" },
	{ "LocalPartCaseSensitive 2\n", 0, "t.conf:1: LocalPartCaseSensitive: '2' is not yes or no" },
	{ "EncryptToSelf y\n", 0, "t.conf:1: EncryptToSelf: 'y' is not yes or no" },
	/* Sizes. */
	{ "MaxMessageSize 10T\n", 0,
	    "t.conf:1: MaxMessageSize: '10T' is not a size (bytes, or a number with K, M or G)" },
	{ "MaxMessageSize 10KB\n", 0, "t.conf:1: MaxMessageSize: '10KB' is not a size" },
	{ "MaxMessageSize 1.5M\n", 0, "t.conf:1: MaxMessageSize: '1.5M' is not a size" },
	{ "MaxMessageSize 10 M\n", 0, "t.conf:1: MaxMessageSize: '10 M' is not a size" },
	{ "MaxMessageSize -1\n", 0, "t.conf:1: MaxMessageSize: '-1' is not a size" },
	{ "MaxMessageSize +1\n", 0, "t.conf:1: MaxMessageSize: '+1' is not a size" },
	{ "MaxMessageSize M\n", 0, "t.conf:1: MaxMessageSize: 'M' is not a size" },
	{ "MaxMessageSize ten\n", 0, "t.conf:1: MaxMessageSize: 'ten' is not a size" },
	{ "MaxMessageSize 0x100\n", 0, "t.conf:1: MaxMessageSize: '0x100' is not a size" },
	{ "MaxMessageSize 99999999999999999999\n", 0,
	    "t.conf:1: MaxMessageSize: '99999999999999999999' is not a size" },	/* > ULLONG_MAX */
	{ "MaxMessageSize 17179869184G\n", 0,
	    "t.conf:1: MaxMessageSize: '17179869184G' is not a size" },	/* 2^64 after the suffix */
	{ "MaxMessageSize 17592186044416M\n", 0, "t.conf:1: MaxMessageSize: '17592186044416M' is not a size" },
	{ "MaxMessageSize 18014398509481984K\n", 0, "t.conf:1: MaxMessageSize: '18014398509481984K' is not a size" },
	/* Choices list the allowed words. */
	{ "Cipher aes128-cbc\n", 0, "t.conf:1: Cipher: 'aes128-cbc' is not aes256-cbc or aes256-gcm" },
	{ "RSAPadding pss\n", 0, "t.conf:1: RSAPadding: 'pss' is not pkcs1 or oaep" },
	{ "MailCommand sendmail -t\n", 0, "t.conf:1: MailCommand: 'sendmail -t' is not a command line" },
	{ "On-DecryptError hold\n", 0, "t.conf:1: On-DecryptError: 'hold' is not" },
	{ "On-KeyNotFound accept\n", 0, "t.conf:1: On-KeyNotFound: 'accept' is not tempfail, reject or hold" },
	{ "On-InternalError drop\n", 0, "t.conf:1: On-InternalError: 'drop' is not tempfail, reject or accept" },
	{ "DefaultPolicy maybe\n", 0, "t.conf:1: DefaultPolicy: 'maybe' is not require, encrypt or never" },
	/* Domains. */
	{ "LocalDomains a.test, b..test\n", 0, "t.conf:1: LocalDomains: 'b..test' is not a domain" },
	{ "LocalDomains a.test ..b.test\n", 0, "t.conf:1: LocalDomains: '..b.test' is not a domain" },
	{ "LocalDomains .\n", 0, "t.conf:1: LocalDomains: '.' is not a domain" },
	{ "LocalDomains b.test.\n", 0, "t.conf:1: LocalDomains: 'b.test.' is not a domain" },
	{ "LocalDomains bob@b.test\n", 0, "t.conf:1: LocalDomains: 'bob@b.test' is not a domain" },
	{ "LocalDomains a.test\nLocalDomains b/test\n", 0, "t.conf:2: LocalDomains: 'b/test' is not a domain" },
	/* Hosts. */
	{ "InternalHosts localhost\n", 0,
	    "t.conf:1: InternalHosts: 'localhost' is not an IP address or prefix (host names are not accepted)" },
	{ "InternalHosts 127.0.0.1, mail.example.com\n", 0,
	    "t.conf:1: InternalHosts: 'mail.example.com' is not an IP address or prefix (host names are not accepted)" },
	{ "InternalHosts 10.0.0.0/33\n", 0, "t.conf:1: InternalHosts: '10.0.0.0/33': bad prefix length" },
	{ "InternalHosts ::1/129\n", 0, "t.conf:1: InternalHosts: '::1/129': bad prefix length" },
	{ "InternalHosts 10.0.0.0/\n", 0, "t.conf:1: InternalHosts: '10.0.0.0/': bad prefix length" },
	{ "InternalHosts 10.0.0\n", 0, "t.conf:1: InternalHosts: '10.0.0' is not an IP address or prefix" },
	{ "InternalHosts 10.0.0.0/+8\n", 0, "t.conf:1: InternalHosts: '10.0.0.0/+8': bad prefix length" },
	{ "Sign maybe\n", 0, "t.conf:1: Sign: 'maybe' is not yes or no" },
	{ "Sign a.test yes\n", 0, "t.conf:1: Sign: 'a.test yes' is not yes or no (per sender: Policy TARGET Sign=yes)" },
	{ "Sign yes\nSign no\n", 0, "t.conf:2: Sign: already set at line 1" },
	{ "Format openpgp\n", 0, "t.conf:1: Format: 'openpgp' is not smime, pgp or auto" },
	{ "On-DecryptError drop\n", 0, "t.conf:1: On-DecryptError: 'drop' is not tempfail, reject, accept or quarantine" },
	{ "On-InternalError quarantine\n", 0, "t.conf:1: On-InternalError: 'quarantine' is not tempfail, reject or accept" },
	{ "Policy a..test Sign=yes\n", 0, "t.conf:1: Policy: 'a..test' is not an address, a domain or a .domain" },
	{ "Policy a.test Sign=yes\nPolicy A.TEST Sign=no\n", 0, "t.conf:2: Policy: Sign for 'A.TEST' is already set at line 1" },
	{ "Policy bob+x@a.test Sign=yes\n", 0, "t.conf:1: Policy: 'bob+x@a.test' names a sub-address" },
	{ "Policy a.test Colour=blue\n", 0, "t.conf:1: Policy: unknown attribute 'Colour'" },
	{ "Policy a.test Sign=maybe\n", 0, "t.conf:1: Policy: Sign 'maybe' is not yes or no" },
	{ "Policy a.test Policy=require\n", 0, "t.conf:1: Policy: unknown attribute 'Policy'" },
	{ "Policy a.test On-KeyNotFound=accept\n", 0, "t.conf:1: Policy: On-KeyNotFound 'accept' is not tempfail, reject or hold" },
	{ "TrustAnchors certs\n", 0, "t.conf:1: TrustAnchors: 'certs' is not an absolute path or 'none'" },
	{ "HarvestCertificates sometimes\n", 0, "t.conf:1: HarvestCertificates: 'sometimes' is not yes or no" },
	/* Policy targets take the address options, wherever those are set. */
	{ "Policy bob+x@b.test never\n", 0,
	    "t.conf:1: Policy: 'bob+x@b.test' names a sub-address; keys and policies belong to the address without it" },
	{ "Policy bob@b.test never\nPolicy Bob@B.test require\n", 0,
	    "t.conf:2: Policy: Policy for 'bob@b.test' is already set at line 1" },
	{ "Policy bob-x@b.test never\nRecipientDelimiter -\n", 0,
	    "t.conf:1: Policy: 'bob-x@b.test' names a sub-address" },
	/* Policy lines. */
	{ "Policy b.test\n", 0,
	    "t.conf:1: Policy: expected 'ADDRESS-OR-DOMAIN [require|encrypt|never] [Attribute=value ...]', got 'b.test'" },
	{ "Policy b.test require now\n", 0, "t.conf:1: Policy: policy 'now' is not require, encrypt or never" },
	{ "Policy b.test maybe\n", 0, "t.conf:1: Policy: policy 'maybe' is not require, encrypt or never" },
	{ "Policy require b.test\n", 0, "t.conf:1: Policy: policy 'b.test' is not require, encrypt or never" },
	{ "Policy b.test require never\n", 0, "t.conf:1: Policy: Policy for 'b.test' is already set at line 1" },
	{ "Policy b..test require\n", 0, "t.conf:1: Policy: 'b..test' is not an address, a domain or a .domain" },
	{ "Policy @b.test never\n", 0, "t.conf:1: Policy: '@b.test' is not an address, a domain or a .domain" },
	{ "Policy bob@ never\n", 0, "t.conf:1: Policy: 'bob@' is not an address, a domain or a .domain" },
	{ "Policy b.test require\n# x\nPolicy B.TEST never\n", 0,
	    "t.conf:3: Policy: Policy for 'B.TEST' is already set at line 1" },
	{ "Policy .b.test require\nPolicy bob@b.test never\nPolicy bob@b.test never\n", 0,
	    "t.conf:3: Policy: Policy for 'bob@b.test' is already set at line 2" },
	/* Socket modes. */
	{ "SocketMode 0999\n", 0, "t.conf:1: SocketMode: '0999' is not an octal mode such as 0660" },
	{ "SocketMode rw-rw----\n", 0, "t.conf:1: SocketMode: 'rw-rw----' is not an octal mode such as 0660" },
	{ "SocketMode 01000\n", 0, "t.conf:1: SocketMode: '01000' is not an octal mode such as 0660" },
	{ "SocketMode 4755\n", 0, "t.conf:1: SocketMode: '4755' is not an octal mode such as 0660" },
	{ "SocketMode -660\n", 0, "t.conf:1: SocketMode: '-660' is not an octal mode such as 0660" },
	{ "SocketMode 0660x\n", 0, "t.conf:1: SocketMode: '0660x' is not an octal mode such as 0660" },
	{ "SocketMode 8\n", 0, "t.conf:1: SocketMode: '8' is not an octal mode such as 0660" },
	/* Log facilities. */
	{ "LogFacility kern\n", 0,
	    "t.conf:1: LogFacility: 'kern' is not a syslog facility (mail, daemon, user, local0..local7)" },
	{ "LogFacility local8\n", 0, "t.conf:1: LogFacility: 'local8' is not a syslog facility" },
	/* Recipient delimiters. */
	{ "RecipientDelimiter @\n", 0,
	    "t.conf:1: RecipientDelimiter: '@' is not a set of delimiter characters or 'none'" },
	{ "RecipientDelimiter +@\n", 0, "t.conf:1: RecipientDelimiter: '+@' is not a set of delimiter characters" },
	{ "RecipientDelimiter \"\n", 0, "t.conf:1: RecipientDelimiter: '\"' is not a set of delimiter characters" },
	{ "RecipientDelimiter + -\n", 0, "t.conf:1: RecipientDelimiter: '+ -' is not a set of delimiter characters" },
	{ "RecipientDelimiter +-=~._%!$&*/|{}#\n", 0,
	    "t.conf:1: RecipientDelimiter: '+-=~._%!$&*/|{}#' is not a set of delimiter characters" },	/* 16 */
	/* Single words. */
	{ "SocketGroup mail users\n", 0, "t.conf:1: SocketGroup: 'mail users' is not a single word" },
	/* NUL bytes, wherever they are. */
	{ "Cipher aes256-gcm\nKeyStore /a\0b\n", 32, "t.conf:2: NUL byte in line" },
	{ "# a\0comment\n", 12, "t.conf:1: NUL byte in line" },
	{ "\0", 1, "t.conf:1: NUL byte in line" },
	{ "Cipher aes256-gcm\n\n\0Cipher", 26, "t.conf:3: NUL byte in line" },
	/* Epoch keys deleted before a sender's queue gives up on mail encrypted to them. */
	{ "EpochKeyGrace 4d\n", 0, "t.conf:1: EpochKeyGrace: at least 5d (Postfix's default maximal_queue_lifetime" },
	{ "\nEpochKeyLifetime 2d\nEpochKeyGrace 119h\n", 0, "t.conf:3: EpochKeyGrace: at least 5d" },
};

/* EpochKeyGrace of 5 days is enough; below that only with epoch keys turned off. */
static void
test_epoch_key_grace_of_five_days_or_none(void **state)
{
	static const char *const ok[] = { "EpochKeyGrace 5d\n", "EpochKeyLifetime 0\nEpochKeyGrace 1d\n",
	    "EpochKeyGrace 0\nEpochKeyLifetime 0\n" };

	for (size_t i = 0; i < N_ELEMENTS(ok); i++)
		config_free(parse_ok(ok[i]));
}

static void
test_every_error_names_file_line_and_cause(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(bad_configs); i++) {
		const char *text = bad_configs[i].text;
		size_t len = bad_configs[i].len != 0 ? bad_configs[i].len : strlen(text);
		struct cables_err err;
		struct config *c;

		memset(err.msg, 'X', sizeof(err.msg) - 1);
		err.msg[sizeof(err.msg) - 1] = '\0';
		c = config_parse("t.conf", text, len, &err);
		if (c != NULL) {
			config_free(c);
			fail_msg("case %zu: \"%s\" was accepted", i, text);
		}
		if (strstr(err.msg, bad_configs[i].expect) != err.msg)
			fail_msg("case %zu: \"%s\": got '%s', expected '%s'", i, text, err.msg,
			    bad_configs[i].expect);
		/* Without an error buffer it fails the same way. */
		assert_null(config_parse("t.conf", text, len, NULL));
	}
}

static void
test_load_of_a_missing_file(void **state)
{
	char *dir = test_tempdir(), *path = xasprintf("%s/absent.conf", dir), *file;
	struct cables_err err;
	struct config *c;

	c = config_load(path, false, &err);
	assert_non_null(c);
	assert_string_equal(c->path, "(defaults)");
	assert_default_values(c);
	config_free(c);

	err.msg[0] = '\0';
	assert_null(config_load(path, true, &err));
	assert_true(strncmp(err.msg, path, strlen(path)) == 0);
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	assert_null(config_load(path, true, NULL));
	free(path);

	/* Only "does not exist" means defaults: any other open error is an error. */
	file = write_file(dir, "plain", "", 0);
	path = xasprintf("%s/cables.conf", file);	/* a path through a regular file */
	err.msg[0] = '\0';
	assert_null(config_load(path, false, &err));
	assert_true(strncmp(err.msg, path, strlen(path)) == 0);
	assert_non_null(strstr(err.msg, "cannot open: Not a directory"));
	free(file);
	free(path);
	test_rmdir(dir);
	free(dir);
}

static void
test_load_of_a_real_file(void **state)
{
	const char *text =
	    "# test\n"
	    "Socket inet:8891@127.0.0.1\n"
	    "LocalDomains b.test, .c.test\n"
	    "Policy bob@b.test require\n"
	    "MaxMessageSize 20M\n"
	    "Cipher aes256-gcm\n";
	char *dir = test_tempdir(), *path = write_file(dir, "cables.conf", text, strlen(text));
	char *bad, *expect;
	struct cables_err err;
	struct config *c;

	c = config_load(path, true, &err);
	if (c == NULL)
		fail_msg("config_load: %s", err.msg);
	assert_string_equal(c->path, path);
	assert_string_equal(c->socket, "inet:8891@127.0.0.1");
	assert_int_equal(c->local_domains.count, 2);
	assert_int_equal(policy_get(&c->policy, "bob@b.test", PA_POLICY, NULL), POLICY_REQUIRE);
	assert_int_equal(c->policy.entries[0].line[PA_POLICY], 4);
	assert_int_equal(c->max_message_size, 20 * 1024 * 1024);
	assert_int_equal(c->cipher, CIPHER_AES256_GCM);
	assert_string_equal(c->key_store, "/var/lib/cables/keys.db");	/* defaults for the rest */
	assert_int_equal(config_check_milter(c, &err), CABLES_OK);
	config_free(c);

	/* Errors in a file are reported against its path. */
	bad = write_file(dir, "bad.conf", "Cipher aes256-gcm\nCiper aes256-cbc\n", 35);
	expect = xasprintf("%s:2: unknown key 'Ciper'", bad);
	assert_null(config_load(bad, false, &err));
	assert_string_equal(err.msg, expect);
	free(expect);
	free(bad);

	/* An empty file is all defaults, named after the file. */
	bad = write_file(dir, "empty.conf", "", 0);
	c = config_load(bad, true, &err);
	assert_non_null(c);
	assert_string_equal(c->path, bad);
	assert_default_values(c);
	config_free(c);
	free(bad);

	test_rmdir(dir);
	free(path);
	free(dir);
}

static void
test_load_refuses_what_is_not_a_config_file(void **state)
{
	char *dir = test_tempdir(), *big_path, *text;
	size_t len = 1024 * 1024 + 64;
	struct cables_err err;

	/* More than 1 MB (of valid comment lines). */
	text = xmalloc(len);
	memset(text, '#', len);
	for (size_t i = 63; i < len; i += 64)
		text[i] = '\n';
	big_path = write_file(dir, "big.conf", text, len);
	err.msg[0] = '\0';
	assert_null(config_load(big_path, true, &err));
	assert_true(strncmp(err.msg, big_path, strlen(big_path)) == 0);
	assert_non_null(strstr(err.msg, "larger than 1 MB"));
	free(big_path);
	free(text);

	/* A directory exists, so must_exist=false does not turn it into defaults. */
	err.msg[0] = '\0';
	assert_null(config_load(dir, false, &err));
	assert_true(strncmp(err.msg, dir, strlen(dir)) == 0);
	test_rmdir(dir);
	free(dir);
}

static void
test_milter_needs_local_domains(void **state)
{
	struct config *c = config_defaults();
	struct cables_err err;

	err.msg[0] = '\0';
	assert_int_equal(config_check_milter(c, &err), CABLES_ERR_ARG);
	assert_non_null(strstr(err.msg, "(defaults): LocalDomains is not set"));
	assert_int_equal(config_check_milter(c, NULL), CABLES_ERR_ARG);
	config_free(c);

	c = parse_ok("Cipher aes256-gcm\n");
	assert_int_equal(config_check_milter(c, &err), CABLES_ERR_ARG);
	assert_non_null(strstr(err.msg, "t.conf: LocalDomains is not set"));
	config_free(c);

	c = parse_ok("LocalDomains b.test\n");
	assert_int_equal(config_check_milter(c, &err), CABLES_OK);
	config_free(c);
}

/* Documentation checks. */

static char *
read_whole_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return NULL;
	buf_init(&b);
	buf_appends(&b, "");
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	return b.data;
}

/* The man page as plain text: roff escapes that split or hide words removed. */
static char *
roff_plain(const char *in)
{
	char *out = xmalloc(strlen(in) + 1), *o = out;

	while (*in != '\0') {
		if (in[0] != '\\' || in[1] == '\0') {
			*o++ = *in++;
			continue;
		}
		switch (in[1]) {
		case '-':			/* \- is a minus sign / hyphen */
			*o++ = '-';
			in += 2;
			break;
		case '&': case '%': case ':': case '|': case '^':	/* zero-width */
			in += 2;
			break;
		case 'f':			/* font: \fB, \f(CW, \f[CR] */
			if (in[2] == '(')
				in += (in[3] != '\0' && in[4] != '\0') ? 5 : strlen(in);
			else if (in[2] == '[')
				in = strchr(in, ']') != NULL ? strchr(in, ']') + 1 : in + strlen(in);
			else
				in += in[2] != '\0' ? 3 : 2;
			break;
		default:
			*o++ = *in++;
			break;
		}
	}
	*o = '\0';
	return out;
}

static bool
is_word_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_';
}

static bool
has_word(const char *text, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = strstr(text, word); p != NULL; p = strstr(p + 1, word))
		if ((p == text || !is_word_char(p[-1])) && !is_word_char(p[len]))
			return true;
	return false;
}

/* A line "KEY ..." or a commented default "# KEY ...". */
static bool
sample_has_key(const char *text, const char *key)
{
	size_t len = strlen(key);

	for (const char *line = text; *line != '\0'; ) {
		const char *p = line, *nl = strchr(line, '\n');

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#') {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
		}
		if (strncmp(p, key, len) == 0 &&
		    (p[len] == ' ' || p[len] == '\t' || p[len] == '\n' || p[len] == '\r' || p[len] == '\0'))
			return true;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return false;
}

static void
test_every_key_is_documented(void **state)
{
	const char *top = getenv("top_srcdir");
	char *man_path, *sample_path, *man, *sample;
	struct buf problems;

	if (top == NULL || top[0] == '\0')
		top = ".";
	man_path = xasprintf("%s/man/cables.conf.5", top);
	sample_path = xasprintf("%s/etc/cables.conf", top);
	man = read_whole_file(man_path);
	sample = read_whole_file(sample_path);
	buf_init(&problems);
	if (man == NULL)
		buf_printf(&problems, "\n  missing man page %s (top_srcdir=%s)", man_path, top);
	if (sample == NULL)
		buf_printf(&problems, "\n  missing sample configuration %s (top_srcdir=%s)", sample_path, top);
	if (man != NULL) {
		char *plain = roff_plain(man);

		for (size_t i = 0; i < config_key_count(); i++)
			if (!has_word(plain, config_key_name(i)))
				buf_printf(&problems, "\n  %s does not document key %s", man_path, config_key_name(i));
		free(plain);
	}
	if (sample != NULL) {
		struct cables_err err;
		struct config *c;

		for (size_t i = 0; i < config_key_count(); i++)
			if (!sample_has_key(sample, config_key_name(i)))
				buf_printf(&problems, "\n  %s has no line '%s ...' or '# %s ...'",
				    sample_path, config_key_name(i), config_key_name(i));
		/* The sample must also be a valid configuration as shipped. */
		c = config_parse(sample_path, sample, strlen(sample), &err);
		if (c == NULL)
			buf_printf(&problems, "\n  sample does not parse: %s", err.msg);
		config_free(c);
	}
	free(man);
	free(sample);
	free(man_path);
	free(sample_path);
	if (problems.len > 0) {
		char *msg = xstrdup(problems.data);

		buf_release(&problems);
		fail_msg("documentation out of step with the key table:%s", msg);
	}
	buf_release(&problems);
}

/* text must not parse, with an error containing want. */
static void
refused_with(const char *text, const char *want)
{
	struct cables_err err;

	assert_null(config_parse("t.conf", text, strlen(text), &err));
	if (strstr(err.msg, want) == NULL)
		fail_msg("'%s': error '%s' does not say '%s'", text, err.msg, want);
}

static void
test_peers(void **state)
{
	static const char fp[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
	char *text = xasprintf("Peer B.Test https://keys.b.test:8443 ExchangeKey=%s TLSPin=sha256//%s\n"
	    "Peer c.test https://[::1]:9/x\nExchangeRateLimit 0\n", fp, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	struct config *c = parse_ok(text);

	assert_int_equal(c->npeers, 2);
	assert_string_equal(c->peers[0].domain, "b.test");
	/* The documented form, without a path, means the standard path. */
	assert_string_equal(c->peers[0].url, "https://keys.b.test:8443/.well-known/cables/keys");
	assert_string_equal(c->peers[1].url, "https://[::1]:9/x");
	assert_string_equal(c->peers[0].fpr, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(c->peers[0].tls_pin, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	assert_string_equal(c->peers[1].fpr, "");
	assert_null(c->peers[1].tls_pin);
	assert_int_equal(c->exchange_rate_limit, 0);
	assert_true(c->key_exchange);
	assert_true(c->wkd);
	config_free(c);
	free(text);
	refused_with("Peer b.test\n", "t.conf:1: Peer: needs a DOMAIN and an https:// URL");
	refused_with("Peer b.test http://keys.b.test\n", "'http://keys.b.test' is not an https:// URL");
	{
		/* URLs keyd could not use are refused when the file is read (cables-keyd -n), not at the first lookup. */
		static const char *const bad[] = {
			"https://", "https://:8443/", "https://keys.b.test:0", "https://keys.b.test:65536",
			"https://keys.b.test:84x3", "https://keys.b.test:", "https://user@keys.b.test",
			"https://keys.b.test/k?x=1", "https://keys.b.test/#f", "https://[::1", "https://[zz]:1",
			"https://k\xc3\xa9ys.b.test", "https://keys..b.test",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *line = xasprintf("Peer b.test %s\n", bad[i]);

			refused_with(line, "is not an https:// URL keyd can use");
			free(line);
		}
	}
	{
		struct config *p = parse_ok("Peer b.test https://127.0.0.1:8443/\nPeer c.test https://keys.c.test\n");

		assert_string_equal(p->peers[0].url, "https://127.0.0.1:8443/.well-known/cables/keys");
		assert_string_equal(p->peers[1].url, "https://keys.c.test/.well-known/cables/keys");
		config_free(p);
	}
	refused_with("Peer b..test https://x\n", "'b..test' is not a domain");
	refused_with("Peer b.test https://x ExchangeKey=00\n", "ExchangeKey: '00' is not a SHA-256 fingerprint");
	refused_with("Peer b.test https://x TLSPin=md5//x\n", "TLSPin: 'md5//x' is not sha256//BASE64");
	refused_with("Peer b.test https://x Colour=blue\n", "'Colour=blue' is not ExchangeKey=FPR or TLSPin=");
	refused_with("Peer b.test https://x\nPeer B.TEST https://y\n", "t.conf:2: Peer b.test: already given at line 1");
	refused_with("ExchangeListen 8443\n", "ExchangeListen: '8443' is not inet:PORT@ADDRESS");
	refused_with("On-KeyChange maybe\n", "On-KeyChange: 'maybe' is not");
}

/* HeaderProtection and Padding: defaults, per entry, and bad words named with the words allowed. */
static void
test_header_protection_and_padding_per_entry(void **state)
{
	struct config *c = parse_ok("HeaderProtection shy\n"
	    "Policy b.test HeaderProtection=none Padding=none\n"
	    "Policy carol@c.test HeaderProtection=baseline\n"
	    "Policy dave@d.test HeaderProtection=off\n");
	struct config *d = parse_ok("");
	struct cables_err err;

	assert_int_equal(policy_get(&d->policy, "x@y.test", PA_HEADER_PROTECTION, NULL), HP_POLICY_BASELINE);
	assert_int_equal(policy_get(&d->policy, "x@y.test", PA_PADDING, NULL), PAD_BUCKETS);
	assert_int_equal(policy_get(&c->policy, "x@y.test", PA_HEADER_PROTECTION, NULL), HP_POLICY_SHY);
	assert_int_equal(policy_get(&c->policy, "bob@b.test", PA_HEADER_PROTECTION, NULL), HP_POLICY_NONE);
	assert_int_equal(policy_get(&c->policy, "bob@b.test", PA_PADDING, NULL), PAD_NONE);
	assert_int_equal(policy_get(&c->policy, "carol@c.test", PA_HEADER_PROTECTION, NULL), HP_POLICY_BASELINE);
	assert_int_equal(policy_get(&c->policy, "carol@c.test", PA_PADDING, NULL), PAD_BUCKETS);
	assert_int_equal(policy_get(&c->policy, "dave@d.test", PA_HEADER_PROTECTION, NULL), HP_POLICY_OFF);
	config_free(c);
	config_free(d);
	assert_null(config_parse("t.conf", "HeaderProtection strict\n", 24, &err));
	assert_string_equal(err.msg, "t.conf:1: HeaderProtection: 'strict' is not none, baseline, shy or off");
	assert_null(config_parse("t.conf", "Policy b.test Padding=padme\n", 28, &err));
	assert_non_null(strstr(err.msg, "'padme' is not none or buckets"));
	(void)state;
}

/* ForwardSecrecy: default prefer, globally and per entry, bad words named. */
static void
test_forward_secrecy_per_entry(void **state)
{
	struct config *c = parse_ok("ForwardSecrecy off\nPolicy b.test ForwardSecrecy=require\n");
	struct config *d = parse_ok("");
	struct cables_err err;

	assert_int_equal(policy_get(&d->policy, "x@y.test", PA_FORWARD_SECRECY, NULL), FS_PREFER);
	assert_int_equal(policy_get(&c->policy, "x@y.test", PA_FORWARD_SECRECY, NULL), FS_OFF);
	assert_int_equal(policy_get(&c->policy, "bob@b.test", PA_FORWARD_SECRECY, NULL), FS_REQUIRE);
	config_free(c);
	config_free(d);
	assert_null(config_parse("t.conf", "Policy b.test ForwardSecrecy=always\n", 36, &err));
	assert_non_null(strstr(err.msg, "'always' is not require, prefer or off"));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_policy_attributes_by_entry),
		cmocka_unit_test(test_empty_text_gives_defaults_named_after_the_file),
		cmocka_unit_test(test_key_table_is_complete_and_its_defaults_parse),
		cmocka_unit_test(test_comments_and_blank_lines_are_ignored),
		cmocka_unit_test(test_keys_are_case_insensitive),
		cmocka_unit_test(test_key_store_path_or_postgresql_url),
		cmocka_unit_test(test_keys_and_values_are_trimmed),
		cmocka_unit_test(test_sizes_take_k_m_g_suffixes),
		cmocka_unit_test(test_bools_accept_yes_no_words),
		cmocka_unit_test(test_string_values_of_each_type),
		cmocka_unit_test(test_none_clears_optional_values),
		cmocka_unit_test(test_list_values_split_on_commas_and_whitespace),
		cmocka_unit_test(test_internal_hosts_in_the_file_replace_the_default),
		cmocka_unit_test(test_policy_lines_build_the_policy_table),
		cmocka_unit_test(test_case_sensitive_local_parts_keep_policy_targets_apart),
		cmocka_unit_test(test_every_error_names_file_line_and_cause),
		cmocka_unit_test(test_epoch_key_grace_of_five_days_or_none),
		cmocka_unit_test(test_load_of_a_missing_file),
		cmocka_unit_test(test_load_of_a_real_file),
		cmocka_unit_test(test_load_refuses_what_is_not_a_config_file),
		cmocka_unit_test(test_milter_needs_local_domains),
		cmocka_unit_test(test_every_key_is_documented),
		cmocka_unit_test(test_header_protection_and_padding_per_entry),
		cmocka_unit_test(test_forward_secrecy_per_entry),
		cmocka_unit_test(test_peers),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
