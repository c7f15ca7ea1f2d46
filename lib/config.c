/* config - the cables.conf parser; see config.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "authres.h"
#include "config.h"
#include "keystore.h"
#include "metrics.h"
#include "notice.h"
#include "util.h"

enum key_type {
	T_STRING,	/* any non-empty string */
	T_PATH,		/* an absolute path */
	T_STORE,	/* an absolute path (SQLite) or a postgresql:// URL (keystore.h) */
	T_OPTPATH,	/* an absolute path, or "none" */
	T_SOCKET,	/* unix:/path, local:/path, inet:PORT@HOST, inet6:PORT@HOST */
	T_BOOL,		/* yes/no/true/false/1/0 */
	T_SIZE,		/* bytes with optional K/M/G suffix; 0 = unlimited */
	T_CHOICE,	/* one word from key->choices; stored as int (enum) */
	T_DOMAINS,	/* list of domains / .domains */
	T_HOSTS,	/* list of IP prefixes */
	T_POLICY,	/* "TARGET [POLICY] [Attribute=value...]", may repeat */
	T_FACILITY,	/* a syslog facility name */
	T_DELIMS,	/* sub-address delimiter characters, or "none" */
	T_MODE,		/* an octal file mode such as 0660 */
	T_OPTSTRING,	/* a word, or "none" */
	T_ANCHORS,	/* a file or directory of CA certificates, or "none" */
	T_ATTR,		/* the default of a policy attribute (key->attr) */
	T_SMTP,		/* inet:PORT@ADDRESS or inet6:PORT@ADDRESS (numeric), or "none" */
	T_SECONDS,	/* a duration: seconds, or a number with ms, s, m, h or d; stored in milliseconds */
	T_PERIOD,	/* a long duration as T_SECONDS, up to 3650d; stored in seconds */
	T_RESOLVER,	/* a numeric address, optionally @PORT, or "system" (/etc/resolv.conf) */
	T_PEER,		/* "DOMAIN https://URL [ExchangeKey=FPR] [TLSPin=sha256//BASE64]", may repeat */
	T_TOKEN,	/* an RFC 2045 token (what an authserv-id may be unquoted) */
	T_LOOPBACK,	/* ADDRESS:PORT on a loopback address (metrics.h), or "none" */
	T_COMMAND,	/* a command line: an absolute program path and its arguments (notice.h) */
};

struct key {
	const char *name;
	enum key_type type;
	const char *dflt;		/* NULL = unset */
	size_t offset;
	const char *const *choices;	/* T_CHOICE, in enum order */
	bool repeat;
	int attr;			/* T_ATTR: enum policy_attr */
};

static const char *const bool_words[] = { "no", "yes", NULL };
static const char *const cipher_words[] = { "aes256-cbc", "aes256-gcm", NULL };
static const char *const padding_words[] = { "pkcs1", "oaep", NULL };
static const char *const preference_words[] = { "smime", "pgp", NULL };
static const char *const dnssec_words[] = { "require", "prefer", NULL };

#define OFF(f) offsetof(struct config, f)

/* The schema.  Keep cables.conf(5) and etc/cables.conf in step (a test checks). */
static const struct key keys[] = {
	{ "Socket",		T_SOCKET,	"unix:/run/cables/milter.sock", OFF(socket), NULL, false, 0 },
	{ "SocketMode",		T_MODE,		"0660",			OFF(socket_mode), NULL, false, 0 },
	{ "SocketGroup",	T_OPTSTRING,	NULL,			OFF(socket_group), NULL, false, 0 },
	{ "User",		T_OPTSTRING,	NULL,			OFF(user), NULL, false, 0 },
	{ "PidFile",		T_OPTPATH,	NULL,			OFF(pid_file), NULL, false, 0 },
	{ "KeyStore",		T_STORE,		"/var/lib/cables/keys.db", OFF(key_store), NULL, false, 0 },
	{ "KeyStoreKey",	T_PATH,		"/etc/cables/keystore.key", OFF(key_store_key), NULL, false, 0 },
	{ "LocalDomains",	T_DOMAINS,	NULL,			OFF(local_domains), NULL, true, 0 },
	{ "InternalHosts",	T_HOSTS,	"127.0.0.0/8, ::1",	OFF(internal_hosts), NULL, true, 0 },
	{ "DefaultPolicy",	T_ATTR,		"encrypt",		OFF(policy), NULL, false, PA_POLICY },
	{ "Format",		T_ATTR,		"auto",			OFF(policy), NULL, false, PA_FORMAT },
	{ "Sign",		T_ATTR,		"no",			OFF(policy), NULL, false, PA_SIGN },
	{ "SenderLogins",	T_OPTPATH,	NULL,			OFF(sender_logins_path), NULL, false, 0 },
	{ "SignUnauthenticated", T_BOOL,	"no",			OFF(sign_unauthenticated), bool_words, false, 0 },
	{ "EncryptToSelf",	T_ATTR,		"no",			OFF(policy), NULL, false, PA_SELF },
	{ "On-KeyNotFound",	T_ATTR,		"hold",		OFF(policy), NULL, false, PA_ON_KEY_NOT_FOUND },
	{ "On-InternalError",	T_ATTR,		"tempfail",		OFF(policy), NULL, false, PA_ON_INTERNAL_ERROR },
	{ "On-DecryptError",	T_ATTR,		"accept",		OFF(policy), NULL, false, PA_ON_DECRYPT_ERROR },
	{ "On-KeydError",	T_ATTR,		"tempfail",		OFF(policy), NULL, false, PA_ON_KEYD_ERROR },
	{ "On-KeyChange",	T_ATTR,		"accept",		OFF(policy), NULL, false, PA_ON_KEY_CHANGE },
	{ "HeaderProtection",	T_ATTR,		"baseline",		OFF(policy), NULL, false, PA_HEADER_PROTECTION },
	{ "Padding",		T_ATTR,		"buckets",		OFF(policy), NULL, false, PA_PADDING },
	{ "ForwardSecrecy",	T_ATTR,		"prefer",		OFF(policy), NULL, false, PA_FORWARD_SECRECY },
	{ "HoldNotice",		T_ATTR,		"yes",			OFF(policy), NULL, false, PA_HOLD_NOTICE },
	{ "HoldTime",		T_SECONDS,	"7d",			OFF(hold_time_ms), NULL, false, 0 },
	{ "HoldAddress",	T_OPTSTRING,	"postmaster",		OFF(hold_address), NULL, false, 0 },
	{ "HoldMaxMessages",	T_SIZE,		"10000",		OFF(hold_max_messages), NULL, false, 0 },
	{ "HoldMaxBytes",	T_SIZE,		"1G",			OFF(hold_max_bytes), NULL, false, 0 },
	{ "HoldMaxMessagesPerSender", T_SIZE,	"100",			OFF(hold_max_sender_messages), NULL, false, 0 },
	{ "HoldMaxBytesPerSender", T_SIZE,	"100M",			OFF(hold_max_sender_bytes), NULL, false, 0 },
	{ "MailCommand",	T_COMMAND,	"/usr/sbin/sendmail",	OFF(mail_command), NULL, false, 0 },
	{ "Policy",		T_POLICY,	NULL,			OFF(policy), NULL, true, 0 },
	{ "TrustAnchors",	T_ANCHORS,	NULL,			OFF(trust_anchors), NULL, false, 0 },
	{ "HarvestCertificates", T_BOOL,	"yes",			OFF(harvest_certificates), bool_words, false, 0 },
	{ "Cipher",		T_CHOICE,	"aes256-cbc",		OFF(cipher), cipher_words, false, 0 },
	{ "RSAPadding",		T_CHOICE,	"pkcs1",		OFF(rsa_padding), padding_words, false, 0 },
	{ "LogFacility",	T_FACILITY,	"mail",			OFF(log_facility), NULL, false, 0 },
	{ "LogFile",		T_OPTPATH,	NULL,			OFF(log_file), NULL, false, 0 },
	{ "TempDir",		T_PATH,		"/var/tmp",		OFF(temp_dir), NULL, false, 0 },
	{ "GnuPGHome",		T_PATH,		"/var/lib/cables/gnupg", OFF(gnupg_home), NULL, false, 0 },
	{ "FormatPreference",	T_CHOICE,	"smime",		OFF(format_preference), preference_words, false, 0 },
	{ "ReinjectTo",		T_SMTP,		NULL,			OFF(reinject_to), NULL, false, 0 },
	{ "ReinjectDaemonName",	T_OPTSTRING,	NULL,			OFF(reinject_daemon_name), NULL, false, 0 },
	{ "ReinjectKey",	T_PATH,		"/etc/cables/reinject.key", OFF(reinject_key), NULL, false, 0 },
	{ "ExitDaemonName",	T_OPTSTRING,	NULL,			OFF(exit_daemon_name), NULL, false, 0 },
	{ "MaxMessageSize",	T_SIZE,		"100M",			OFF(max_message_size), NULL, false, 0 },
	{ "KeydSocket",		T_OPTPATH,	"/run/cables-keyd/keyd.sock", OFF(keyd_socket), NULL, false, 0 },
	{ "KeydPidFile",	T_OPTPATH,	NULL,			OFF(keyd_pid_file), NULL, false, 0 },
	{ "KeydAdminSocket",	T_OPTPATH,	NULL,			OFF(keyd_admin_socket), NULL, false, 0 },
	{ "AdminGroup",		T_OPTSTRING,	NULL,			OFF(admin_group), NULL, false, 0 },
	{ "KeydUser",		T_OPTSTRING,	NULL,			OFF(keyd_user), NULL, false, 0 },
	{ "KeyholderSocket",	T_OPTPATH,	"/run/cables-keyholder/keyholder.sock", OFF(keyholder_socket), NULL, false, 0 },
	{ "KeyholderUser",	T_OPTSTRING,	NULL,			OFF(keyholder_user), NULL, false, 0 },
	{ "KeyholderLogFile",	T_OPTPATH,	NULL,			OFF(keyholder_log_file), NULL, false, 0 },
	{ "KeyholderRateLimit",	T_SIZE,		"6000",			OFF(keyholder_rate_limit), NULL, false, 0 },
	{ "KeyholderSignRateLimit", T_SIZE,	"6000",			OFF(keyholder_sign_rate_limit), NULL, false, 0 },
	{ "KeyholderDecryptRateLimit", T_SIZE,	"6000",			OFF(keyholder_decrypt_rate_limit), NULL, false, 0 },
	{ "KeyholderFailureRateLimit", T_SIZE,	"60",			OFF(keyholder_failure_rate_limit), NULL, false, 0 },
	{ "KeyholderClients",	T_SIZE,		"128",			OFF(keyholder_clients), NULL, false, 0 },
	{ "KeyholderIdleTimeout", T_SECONDS,	"5m",			OFF(keyholder_idle_timeout_ms), NULL, false, 0 },
	{ "EpochKeyLifetime",	T_SECONDS,	"7d",			OFF(epoch_key_lifetime_ms), NULL, false, 0 },
	{ "EpochKeyGrace",	T_SECONDS,	"6d",			OFF(epoch_key_grace_ms), NULL, false, 0 },
	{ "Resolver",		T_RESOLVER,	"system",		OFF(resolver), NULL, false, 0 },
	{ "DNSSECTrustAnchor",	T_PATH,		"/usr/share/dns/root.ds", OFF(dnssec_anchor), NULL, false, 0 },
	{ "DNSSEC",		T_CHOICE,	"require",		OFF(dnssec), dnssec_words, false, 0 },
	{ "LookupTimeout",	T_SECONDS,	"5s",			OFF(lookup_timeout_ms), NULL, false, 0 },
	{ "UnresponsiveTime",	T_SECONDS,	"10m",			OFF(unresponsive_time_ms), NULL, false, 0 },
	{ "DowngradeMemory",	T_PERIOD,	"90d",			OFF(downgrade_memory_s), NULL, false, 0 },
	{ "AdminAddress",	T_OPTSTRING,	NULL,			OFF(admin_address), NULL, false, 0 },
	{ "CacheMinTTL",	T_SECONDS,	"60s",			OFF(cache_min_ttl_ms), NULL, false, 0 },
	{ "CacheMaxTTL",	T_SECONDS,	"1d",			OFF(cache_max_ttl_ms), NULL, false, 0 },
	{ "RecipientDelimiter",	T_DELIMS,	"+",			OFF(addr.delimiters), NULL, false, 0 },
	{ "LocalPartCaseSensitive", T_BOOL,	"no",			OFF(addr.local_case_sensitive), bool_words, false, 0 },
	{ "ExchangeListen",	T_SMTP,		NULL,			OFF(exchange_listen), NULL, false, 0 },
	{ "ExchangeCertificate", T_OPTPATH,	NULL,			OFF(exchange_cert), NULL, false, 0 },
	{ "ExchangeCertificateKey", T_OPTPATH,	NULL,			OFF(exchange_cert_key), NULL, false, 0 },
	{ "ExchangeKey",	T_OPTPATH,	NULL,			OFF(exchange_key), NULL, false, 0 },
	{ "ExchangeCAFile",	T_OPTPATH,	NULL,			OFF(exchange_ca_file), NULL, false, 0 },
	{ "ExchangeRateLimit",	T_SIZE,		"120",			OFF(exchange_rate_limit), NULL, false, 0 },
	{ "ExchangeAnonymousAddresses", T_SIZE,	"8",			OFF(exchange_anon_addresses), NULL, false, 0 },
	{ "ExchangeAnonymousRateLimit", T_SIZE,	"20",			OFF(exchange_anon_rate_limit), NULL, false, 0 },
	{ "KeyExchange",	T_BOOL,		"yes",			OFF(key_exchange), bool_words, false, 0 },
	{ "Peer",		T_PEER,		NULL,			OFF(peers), NULL, true, 0 },
	{ "WKD",		T_BOOL,		"yes",			OFF(wkd), bool_words, false, 0 },
	{ "MetricsListen",	T_LOOPBACK,	NULL,			OFF(metrics_listen), NULL, false, 0 },
	{ "KeydMetricsListen",	T_LOOPBACK,	NULL,			OFF(keyd_metrics_listen), NULL, false, 0 },
	/* Unset: the host name (see config_new_defaults). */
	{ "AuthservID",		T_TOKEN,	NULL,			OFF(authserv_id), NULL, false, 0 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const facility_names[] = {
	"mail", "daemon", "user", "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7", NULL
};

size_t config_key_count(void) { return NKEYS; }
const char *config_key_name(size_t i) { return i < NKEYS ? keys[i].name : NULL; }
const char *config_key_default(size_t i) { return i < NKEYS ? keys[i].dflt : NULL; }

const char *
cipher_name(enum cipher_choice c)
{
	return cipher_words[c];
}

static int
choice_index(const char *const *words, const char *v)
{
	for (int i = 0; words[i] != NULL; i++)
		if (str_ieq(words[i], v))
			return i;
	return -1;
}

static void
choices_text(const char *const *words, char *out, size_t len)
{
	out[0] = '\0';
	for (int i = 0; words[i] != NULL; i++) {
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%s", i == 0 ? "" :
		    words[i + 1] == NULL ? " or " : ", ", words[i]);
	}
}

static cables_status
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	if (choice_index(yes, v) >= 0)
		*out = true;
	else if (choice_index(no, v) >= 0)
		*out = false;
	else
		return CABLES_ERR_SYNTAX;
	return CABLES_OK;
}

/* A unit suffix and what it multiplies by; "" is the bare number. */
struct unit {
	const char *suffix;
	unsigned long long mult;
};

static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024ULL }, { "K", 1024ULL }, { "m", 1024ULL * 1024 }, { "M", 1024ULL * 1024 },
	{ "g", 1024ULL * 1024 * 1024 }, { "G", 1024ULL * 1024 * 1024 }, { NULL, 0 } };
static const struct unit time_units[] = {	/* to milliseconds */
	{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 }, { NULL, 0 } };

/* Digits and one of units' suffixes, at most max once multiplied. */
static cables_status
parse_scaled(const char *v, const struct unit *units, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return CABLES_ERR_SYNTAX;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return CABLES_ERR_SYNTAX;
	for (; units->suffix != NULL; units++)
		if (strcmp(end, units->suffix) == 0) {
			if (n > max / units->mult)
				return CABLES_ERR_SYNTAX;
			*out = n * units->mult;
			return CABLES_OK;
		}
	return CABLES_ERR_SYNTAX;
}

/* Bytes, or a number with K, M or G. */
static cables_status
parse_size(const char *v, size_t *out)
{
	unsigned long long n;

	if (parse_scaled(v, size_units, SIZE_MAX, &n) != CABLES_OK)
		return CABLES_ERR_SYNTAX;
	*out = (size_t)n;
	return CABLES_OK;
}

/* A duration in milliseconds: "5", "5s", "500ms", "10m", "2h", "1d"; at most 30 days. */
static cables_status
parse_seconds(const char *v, unsigned long *out)
{
	unsigned long long n;

	if (parse_scaled(v, time_units, 30ULL * 86400000, &n) != CABLES_OK)
		return CABLES_ERR_SYNTAX;
	*out = (unsigned long)n;
	return CABLES_OK;
}

/* A long duration in seconds (memories kept for months), as parse_seconds() reads it; at most 3650 days. */
static cables_status
parse_period(const char *v, unsigned long *out)
{
	unsigned long long n;

	if (parse_scaled(v, time_units, 3650ULL * 86400000, &n) != CABLES_OK)
		return CABLES_ERR_SYNTAX;
	*out = (unsigned long)(n / 1000);
	return CABLES_OK;
}

/* "system", or an IPv4/IPv6 address with an optional @PORT. */
static bool
resolver_valid(const char *v)
{
	char host[64], *at, *end;
	unsigned char buf[16];
	unsigned long port;

	if (strcmp(v, "system") == 0)
		return true;
	if (strlen(v) >= sizeof(host))
		return false;
	strlcpy_c(host, v, sizeof(host));
	if ((at = strchr(host, '@')) != NULL) {
		*at = '\0';
		port = strtoul(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
			return false;
	}
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool
socket_valid(const char *v)
{
	const char *at;
	char *end;
	unsigned long port;

	if (strncmp(v, "unix:", 5) == 0 || strncmp(v, "local:", 6) == 0)
		return strchr(v, ':')[1] == '/';
	if (strncmp(v, "inet:", 5) != 0 && strncmp(v, "inet6:", 6) != 0)
		return false;
	v = strchr(v, ':') + 1;
	if (*v < '0' || *v > '9')
		return false;
	port = strtoul(v, &end, 10);
	if (end == v || port == 0 || port > 65535)
		return false;
	at = end;
	return *at == '\0' || (*at == '@' && at[1] != '\0');
}

/* Split a list value at commas and whitespace; calls add for each item. */
static cables_status
for_each_item(const char *v, cables_status (*add)(void *, const char *, struct cables_err *),
    void *arg, struct cables_err *err)
{
	char *copy = xstrdup(v), *save = NULL, *item;
	cables_status st = CABLES_OK;

	for (item = strtok_r(copy, ", \t", &save); item != NULL;
	    item = strtok_r(NULL, ", \t", &save)) {
		st = add(arg, item, err);
		if (st != CABLES_OK)
			break;
	}
	free(copy);
	return st;
}

static cables_status
add_domain(void *arg, const char *item, struct cables_err *err)
{
	if (!domain_valid(item[0] == '.' ? item + 1 : item))
		return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not a domain", item);
	domain_list_add(arg, item);
	return CABLES_OK;
}

static cables_status
add_host(void *arg, const char *item, struct cables_err *err)
{
	return host_list_add(arg, item, err);
}

/*
 * "Policy TARGET [require|encrypt|never] [Attribute=value ...]": set the
 * attributes of one entry of the policy table.
 */
/*
 * A Peer URL as keyd will ask it: https://HOST[:PORT][/PATH], HOST a DNS
 * name in ASCII (an internationalised one would reach libcurl's system
 * resolver) or a bracketed IPv6 / dotted IPv4 address, PORT 1-65535, no
 * user, query or fragment; no path (or "/") means the standard path.
 * NULL when it cannot work.
 */
static char *
peer_url(const char *w)
{
	const char *h = w + 8, *end, *path;
	char host[256];
	size_t n;

	if (strncmp(w, "https://", 8) != 0 || strlen(w) > 512 || strpbrk(w, "\"'<>\\?#@ \t") != NULL)
		return NULL;
	path = h + strcspn(h, "/");
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(path - h));
		unsigned char a6[16];

		if (close == NULL || (n = (size_t)(close - h - 1)) == 0 || n >= sizeof(host))
			return NULL;
		memcpy(host, h + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, a6) != 1)
			return NULL;
		end = close + 1;
	} else {
		unsigned char a4[4];

		end = h + strcspn(h, ":/");
		if ((n = (size_t)(end - h)) == 0 || n >= sizeof(host))
			return NULL;
		memcpy(host, h, n);
		host[n] = '\0';
		for (const char *c = host; *c != '\0'; c++)
			if ((unsigned char)*c >= 0x80)
				return NULL;
		if (inet_pton(AF_INET, host, a4) != 1 && !domain_valid(host))
			return NULL;
	}
	if (*end == ':') {
		char *stop;
		unsigned long port = strtoul(end + 1, &stop, 10);

		if (end[1] < '0' || end[1] > '9' || stop != path || port == 0 || port > 65535)
			return NULL;
	} else if (end != path) {
		return NULL;
	}
	if (*path == '\0' || strcmp(path, "/") == 0)
		return xasprintf("%.*s%s", (int)(path - w), w, CABLES_EXCHANGE_PATH);
	return xstrdup(w);
}

/* "Peer DOMAIN URL [ExchangeKey=FPR] [TLSPin=sha256//BASE64]": one more peer. */
static cables_status
set_peer_line(struct config *c, const char *v, unsigned int line, struct cables_err *err)
{
	char *copy = xstrdup(v), *save = NULL, *w;
	struct peer p;
	cables_status st = CABLES_OK;
	int n = 0;

	memset(&p, 0, sizeof(p));
	p.line = line;
	for (w = strtok_r(copy, " \t", &save); w != NULL && st == CABLES_OK; w = strtok_r(NULL, " \t", &save), n++) {
		if (n == 0) {
			if (!domain_valid(w))
				st = cables_fail(err, CABLES_ERR_SYNTAX, "Peer: '%s' is not a domain", w);
			else
				str_lower(p.domain = xstrdup(w));
		} else if (n == 1) {
			if ((p.url = peer_url(w)) == NULL)
				st = cables_fail(err, CABLES_ERR_SYNTAX, "Peer %s: '%s' is not an https:// URL keyd can use "
				    "(https://HOST[:PORT][/PATH], HOST a DNS name in ASCII or an IP address, no user, query or "
				    "fragment)", p.domain, w);
		} else if (strncasecmp(w, "ExchangeKey=", 12) == 0) {
			const char *f = w + 12;

			if (strlen(f) != 64 || strspn(f, "0123456789abcdefABCDEF") != 64)
				st = cables_fail(err, CABLES_ERR_SYNTAX,
				    "Peer %s: ExchangeKey: '%s' is not a SHA-256 fingerprint (64 hex digits)", p.domain, f);
			else
				str_lower(strcpy(p.fpr, f));
		} else if (strncasecmp(w, "TLSPin=", 7) == 0) {
			if (strncmp(w + 7, "sha256//", 8) != 0 || strlen(w + 15) != 44)
				st = cables_fail(err, CABLES_ERR_SYNTAX,
				    "Peer %s: TLSPin: '%s' is not sha256//BASE64 (a public key's SHA-256)", p.domain, w + 7);
			else
				p.tls_pin = xstrdup(w + 7);
		} else {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "Peer %s: '%s' is not ExchangeKey=FPR or TLSPin=sha256//BASE64",
			    p.domain, w);
		}
	}
	if (st == CABLES_OK && n < 2)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "Peer: needs a DOMAIN and an https:// URL");
	for (size_t i = 0; st == CABLES_OK && i < c->npeers; i++)
		if (strcmp(c->peers[i].domain, p.domain) == 0)
			st = cables_fail(err, CABLES_ERR_SYNTAX, "Peer %s: already given at line %u", p.domain,
			    c->peers[i].line);
	if (st == CABLES_OK) {
		c->peers = xreallocarray(c->peers, c->npeers + 1, sizeof(*c->peers));
		c->peers[c->npeers++] = p;
	} else {
		free(p.domain);
		free(p.url);
		free(p.tls_pin);
	}
	free(copy);
	return st;
}

static cables_status
set_policy_line(struct config *c, const struct key *k, const char *v, unsigned int line,
    struct cables_err *err)
{
	char *copy = xstrdup(v), *save = NULL, *target, *word;
	struct cables_err inner;
	cables_status st = CABLES_OK;
	char words[128];
	int n = 0;

	target = strtok_r(copy, " \t", &save);
	while (st == CABLES_OK && (word = strtok_r(NULL, " \t", &save)) != NULL) {
		char *eq = strchr(word, '=');
		int attr, value;

		if (eq == NULL) {
			attr = PA_POLICY;
			eq = word - 1;
		} else {
			*eq = '\0';
			attr = policy_attr_find(word);
			if (attr < 0 || attr == PA_POLICY) {
				st = cables_fail(err, CABLES_ERR_SYNTAX, "%s: unknown attribute '%s' (Format, Sign, "
				    "EncryptToSelf, On-KeyNotFound, On-InternalError, On-DecryptError, On-KeydError, On-KeyChange)", k->name, word);
				break;
			}
		}
		if (!policy_value_parse((enum policy_attr)attr, eq + 1, &value)) {
			policy_value_words((enum policy_attr)attr, words, sizeof(words));
			st = cables_fail(err, CABLES_ERR_SYNTAX, "%s: %s '%s' is not %s", k->name,
			    attr == PA_POLICY ? "policy" : policy_attr_name((enum policy_attr)attr), eq + 1, words);
			break;
		}
		if ((st = policy_table_set(&c->policy, target, (enum policy_attr)attr, value, line, &inner)) != CABLES_OK)
			cables_fail(err, st, "%s: %s", k->name, inner.msg);
		n++;
	}
	if (st == CABLES_OK && n == 0)
		st = cables_fail(err, CABLES_ERR_SYNTAX,
		    "%s: expected 'ADDRESS-OR-DOMAIN [require|encrypt|never] [Attribute=value ...]', got '%s'", k->name, v);
	free(copy);
	return st;
}

/* Set one key from a value.  err gets the detail without file:line. */
static cables_status
set_value(struct config *c, const struct key *k, const char *v, unsigned int line,
    struct cables_err *err)
{
	void *field = (char *)c + k->offset;
	char words[128];
	int idx;

	switch (k->type) {
	case T_STRING:
		break;
	case T_TOKEN:
		if (!authres_is_token(v) || strlen(v) >= AUTHRES_ID_MAX)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not a single token "
			    "(letters, digits and '.', '-', '_', no spaces or ()<>@,;:\\\"/[]?=)", k->name, v);
		break;
	case T_PATH:
		if (v[0] != '/')
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not an absolute path", k->name, v);
		break;
	case T_STORE:
		/* Never echoed: a URL may hold a password. */
		if (v[0] != '/' && !keystore_spec_is_url(v))
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: not an absolute path or a postgresql:// URL", k->name);
		break;
	case T_OPTPATH:
		if (str_ieq(v, "none")) {
			free(*(char **)field);
			*(char **)field = NULL;
			return CABLES_OK;
		}
		if (v[0] != '/')
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not an absolute path or 'none'", k->name, v);
		break;
	case T_COMMAND:
		if (notice_command_check(v, NULL) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not a command line (an absolute program "
			    "path and at most %d arguments)", k->name, v, NOTICE_COMMAND_WORDS - 1);
		break;
	case T_OPTSTRING:
		if (str_ieq(v, "none")) {
			free(*(char **)field);
			*(char **)field = NULL;
			return CABLES_OK;
		}
		if (strpbrk(v, " \t") != NULL)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not a single word", k->name, v);
		if (strcmp(k->name, "AdminAddress") == 0 && (!addr_valid(v) || strpbrk(v, "<>") != NULL || v[0] == '-'))
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not a mail address", k->name, v);
		break;
	case T_MODE: {
		char *end;
		unsigned long mode = strtoul(v, &end, 8);

		if (*v < '0' || *v > '7' || *end != '\0' || mode > 0777)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not an octal mode such as 0660", k->name, v);
		*(unsigned int *)field = (unsigned int)mode;
		return CABLES_OK;
	}
	case T_SOCKET:
		if (!socket_valid(v))
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST", k->name, v);
		break;
	case T_FACILITY:
		if (choice_index(facility_names, v) < 0)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not a syslog facility (mail, daemon, user, local0..local7)", k->name, v);
		break;
	case T_BOOL:
		if (parse_bool(v, field) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not yes or no", k->name, v);
		return CABLES_OK;
	case T_SECONDS:
		if (parse_seconds(v, field) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not a duration (seconds, or a number with ms, s, m, h or d; at most 30d)", k->name, v);
		return CABLES_OK;
	case T_PERIOD:
		if (parse_period(v, field) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not a duration (seconds, or a number with s, m, h or d; at most 3650d)", k->name, v);
		return CABLES_OK;
	case T_RESOLVER:
		if (!resolver_valid(v))
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not system or a numeric address with an optional @PORT", k->name, v);
		free(*(char **)field);
		*(char **)field = strcmp(v, "system") == 0 ? NULL : xstrdup(v);
		return CABLES_OK;
	case T_SIZE:
		if (parse_size(v, field) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not a size (bytes, or a number with K, M or G)", k->name, v);
		return CABLES_OK;
	case T_CHOICE:
		idx = choice_index(k->choices, v);
		if (idx < 0) {
			choices_text(k->choices, words, sizeof(words));
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not %s", k->name, v, words);
		}
		*(int *)field = idx;
		return CABLES_OK;
	case T_DOMAINS:
	case T_HOSTS: {
		cables_status st = for_each_item(v, k->type == T_DOMAINS ? add_domain : add_host, field, err);

		if (st != CABLES_OK && err != NULL) {
			struct cables_err inner = *err;
			cables_fail(err, st, "%s: %s", k->name, inner.msg);
		}
		return st;
	}
	case T_ATTR: {
		struct policy_table *t = field;
		int value;

		if (!policy_value_parse((enum policy_attr)k->attr, v, &value)) {
			policy_value_words((enum policy_attr)k->attr, words, sizeof(words));
			if (k->attr == PA_SIGN && strchr(v, ' ') != NULL)
				return cables_fail(err, CABLES_ERR_SYNTAX,
				    "%s: '%s' is not yes or no (per sender: Policy TARGET Sign=yes)", k->name, v);
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not %s", k->name, v, words);
		}
		t->dflt[k->attr] = value;
		t->dflt_line[k->attr] = line;
		return CABLES_OK;
	}
	case T_POLICY:
		return set_policy_line(c, k, v, line, err);
	case T_PEER:
		return set_peer_line(c, v, line, err);
	case T_SMTP: {
		char host[INET6_ADDRSTRLEN + 1];
		unsigned char a[16];
		const char *at = strchr(v, '@');
		bool v6 = strncmp(v, "inet6:", 6) == 0;

		if (str_ieq(v, "none")) {
			free(*(char **)field);
			*(char **)field = NULL;
			return CABLES_OK;
		}
		if (!socket_valid(v) || (strncmp(v, "inet:", 5) != 0 && !v6) || at == NULL ||
		    strlen(at + 1) >= sizeof(host) ||
		    (strcmp(at + 1, "localhost") != 0 && inet_pton(v6 ? AF_INET6 : AF_INET, at + 1, a) != 1))
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not inet:PORT@ADDRESS or inet6:PORT@ADDRESS (a numeric address: no DNS)", k->name, v);
		break;
	}
	case T_LOOPBACK: {
		struct sockaddr_storage ss;
		socklen_t len;
		struct cables_err why;

		if (str_ieq(v, "none")) {
			free(*(char **)field);
			*(char **)field = NULL;
			return CABLES_OK;
		}
		if (metrics_listen_parse(v, &ss, &len, &why) != CABLES_OK)
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: %s", k->name, why.msg);
		break;
	}
	case T_ANCHORS:
		if (str_ieq(v, "none")) {
			free(*(char **)field);
			*(char **)field = NULL;
			return CABLES_OK;
		}
		if (v[0] != '/')
			return cables_fail(err, CABLES_ERR_SYNTAX, "%s: '%s' is not an absolute path or 'none'", k->name, v);
		break;
	case T_DELIMS:
		if (str_ieq(v, "none"))
			v = "";
		else if (strlen(v) >= sizeof(c->addr.delimiters) || strpbrk(v, "@\" \t") != NULL)
			return cables_fail(err, CABLES_ERR_SYNTAX,
			    "%s: '%s' is not a set of delimiter characters or 'none'", k->name, v);
		strlcpy_c(field, v, sizeof(c->addr.delimiters));
		return CABLES_OK;
	}
	/* String-valued types. */
	free(*(char **)field);
	*(char **)field = xstrdup(v);
	return CABLES_OK;
}

/* The host name, the AuthservID when none is set (RFC 8601 suggests a host name of the ADMD). */
static char *
default_authserv_id(void)
{
	char host[AUTHRES_ID_MAX];

	if (gethostname(host, sizeof(host)) != 0 || (host[sizeof(host) - 1] = '\0', !authres_is_token(host)))
		return xstrdup("localhost");
	return xstrdup(host);
}

static struct config *
config_new_defaults(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	struct cables_err err;

	policy_table_init(&c->policy);
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].dflt != NULL && set_value(c, &keys[i], keys[i].dflt, 0, &err) != CABLES_OK)
			abort();	/* a default the parser refuses is a bug caught by every test */
	c->authserv_id = default_authserv_id();
	return c;
}

/* KeydAdminSocket not given: keyd-admin.sock beside KeydSocket (none when KeydSocket is none). */
static void
derive_admin_socket(struct config *c)
{
	const char *slash;

	if (c->keyd_admin_socket != NULL || c->keyd_socket == NULL)
		return;
	slash = strrchr(c->keyd_socket, '/');
	c->keyd_admin_socket = xasprintf("%.*s/keyd-admin.sock", (int)(slash - c->keyd_socket), c->keyd_socket);
}

struct config *
config_defaults(void)
{
	struct config *c = config_new_defaults();

	c->path = xstrdup("(defaults)");
	derive_admin_socket(c);
	return c;
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (str_ieq(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Reset a list-valued key to empty when the file first sets it (file replaces default). */
static void
clear_value(struct config *c, const struct key *k)
{
	void *field = (char *)c + k->offset;

	if (k->type == T_DOMAINS)
		domain_list_release(field);
	else if (k->type == T_HOSTS)
		host_list_release(field);
}

struct config *
config_parse(const char *name, const char *text, size_t len, struct cables_err *err)
{
	struct config *c = config_new_defaults();
	unsigned int seen[NKEYS] = { 0 };
	const char *p = text, *end = text + len;
	unsigned int lineno = 0;
	struct cables_err detail;

	c->path = xstrdup(name);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t linelen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *line, *key, *value;
		const struct key *k;
		size_t ki;

		lineno++;
		if (memchr(p, '\0', linelen) != NULL) {
			cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: NUL byte in line", name, lineno);
			goto fail;
		}
		line = xstrndup(p, linelen);
		p += linelen + (nl != NULL);
		str_trim(line);
		if (line[0] == '\0' || line[0] == '#') {
			free(line);
			continue;
		}
		key = line;
		value = key + strcspn(key, " \t");
		if (*value != '\0')
			*value++ = '\0';
		value = str_trim(value);
		k = find_key(key);
		if (k == NULL) {
			cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: unknown key '%s'", name, lineno, key);
			free(line);
			goto fail;
		}
		if (*value == '\0') {
			cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: %s: missing value", name, lineno, k->name);
			free(line);
			goto fail;
		}
		ki = (size_t)(k - keys);
		if (seen[ki] != 0 && !k->repeat) {
			cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: %s: already set at line %u",
			    name, lineno, k->name, seen[ki]);
			free(line);
			goto fail;
		}
		if (seen[ki] == 0)
			clear_value(c, k);
		seen[ki] = lineno;
		if (set_value(c, k, value, lineno, &detail) != CABLES_OK) {
			cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: %s", name, lineno, detail.msg);
			free(line);
			goto fail;
		}
		free(line);
	}
	/* Address rules take the address options, wherever they appear in the file. */
	if (policy_table_normalize(&c->policy, &c->addr, &lineno, &detail) != CABLES_OK) {
		cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: Policy: %s", name, lineno, detail.msg);
		goto fail;
	}
	if (seen[(size_t)(find_key("KeydAdminSocket") - keys)] == 0)
		derive_admin_socket(c);
	/* An overlap (a seventh of the lifetime) shorter than a few minutes would rotate faster than keyd can publish. */
	if (c->epoch_key_lifetime_ms != 0 && c->epoch_key_lifetime_ms < 3600UL * 1000) {
		cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: EpochKeyLifetime: at least 1h (or 0: no epoch keys)", name,
		    seen[(size_t)(find_key("EpochKeyLifetime") - keys)]);
		goto fail;
	}
	/*
	 * A sender's MTA may hold mail encrypted to an epoch key until its queue
	 * lifetime ends (Postfix's maximal_queue_lifetime: 5 days): deleted
	 * sooner, such mail arrives undecryptable.  No epoch keys, no matter.
	 */
	if (c->epoch_key_lifetime_ms != 0 && c->epoch_key_grace_ms < 5UL * 86400 * 1000) {
		cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: EpochKeyGrace: at least 5d (Postfix's default "
		    "maximal_queue_lifetime: mail queued for an epoch key must still be decryptable when it arrives)", name,
		    seen[(size_t)(find_key("EpochKeyGrace") - keys)]);
		goto fail;
	}
	/* KeyholderRateLimit is what the sign and decrypt buckets hold unless they are set themselves. */
	if (seen[(size_t)(find_key("KeyholderSignRateLimit") - keys)] == 0)
		c->keyholder_sign_rate_limit = c->keyholder_rate_limit;
	if (seen[(size_t)(find_key("KeyholderDecryptRateLimit") - keys)] == 0)
		c->keyholder_decrypt_rate_limit = c->keyholder_rate_limit;
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *
config_load(const char *path, bool must_exist, struct cables_err *err)
{
	FILE *fp;
	struct buf text;
	char chunk[4096];
	size_t n;
	struct config *c;

	fp = fopen(path, "r");
	if (fp == NULL) {
		if (errno == ENOENT && !must_exist) {
			c = config_defaults();
			return c;
		}
		cables_fail(err, CABLES_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&text);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		buf_append(&text, chunk, n);
		if (text.len > 1024 * 1024) {
			fclose(fp);
			buf_release(&text);
			cables_fail(err, CABLES_ERR_TOOBIG, "%s: larger than 1 MB, not a config file", path);
			return NULL;
		}
	}
	if (ferror(fp)) {
		cables_fail(err, CABLES_ERR_IO, "%s: read error: %s", path, strerror(errno));
		fclose(fp);
		buf_release(&text);
		return NULL;
	}
	fclose(fp);
	c = config_parse(path, text.data != NULL ? text.data : "", text.len, err);
	buf_release(&text);
	/* Read here, not in config_parse: parsing text never opens files. */
	if (c != NULL && c->sender_logins_path != NULL &&
	    sender_logins_load(&c->sender_logins, c->sender_logins_path, &c->addr, err) != CABLES_OK) {
		config_free(c);
		return NULL;
	}
	return c;
}

cables_status
config_check_milter(const struct config *c, struct cables_err *err)
{
	if (c->local_domains.count == 0)
		return cables_fail(err, CABLES_ERR_ARG,
		    "%s: LocalDomains is not set: the milter cannot tell local from remote recipients", c->path);
	return CABLES_OK;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->socket);
	free(c->socket_group);
	free(c->pid_file);
	free(c->user);
	free(c->exit_daemon_name);
	free(c->key_store);
	free(c->key_store_key);
	domain_list_release(&c->local_domains);
	host_list_release(&c->internal_hosts);
	policy_table_release(&c->policy);
	free(c->trust_anchors);
	free(c->log_facility);
	free(c->log_file);
	free(c->temp_dir);
	free(c->gnupg_home);
	free(c->keyd_socket);
	free(c->keyd_admin_socket);
	free(c->admin_group);
	free(c->keyd_user);
	free(c->keyholder_socket);
	free(c->keyholder_user);
	free(c->keyholder_log_file);
	free(c->keyd_pid_file);
	free(c->resolver);
	free(c->dnssec_anchor);
	free(c->admin_address);
	free(c->reinject_to);
	free(c->hold_address);
	free(c->mail_command);
	free(c->authserv_id);
	free(c->reinject_key);
	free(c->sender_logins_path);
	free(c->reinject_daemon_name);
	sender_logins_free(c->sender_logins);
	free(c->exchange_listen);
	free(c->metrics_listen);
	free(c->keyd_metrics_listen);
	free(c->exchange_cert);
	free(c->exchange_cert_key);
	free(c->exchange_key);
	free(c->exchange_ca_file);
	for (size_t i = 0; i < c->npeers; i++) {
		free(c->peers[i].domain);
		free(c->peers[i].url);
		free(c->peers[i].tls_pin);
	}
	free(c->peers);
	free(c);
}
