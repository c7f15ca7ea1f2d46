/*
 * config - the cables.conf parser and the configuration it produces.
 *
 * The file is "Key value" lines, like opendkim.conf: a key, whitespace, and
 * the rest of the line as value.  Blank lines and lines whose first
 * non-blank character is '#' are ignored.  Keys are case-insensitive.
 * Every key is described once, in the table in config.c (name, type,
 * default, documentation); defaults are parsed by the same code as values
 * in the file, so a default cannot be something the parser would refuse.
 *
 * Errors name the file and line: "cables.conf:12: unknown key 'Ciper'".
 * A key given twice is an error unless it may repeat (Policy).
 *
 * config_load() returns a config owned by the caller (config_free()).
 */
#ifndef CABLES_CONFIG_H
#define CABLES_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "addr.h"
#include "senderlogins.h"
#include "policy.h"
#include "status.h"

#define CABLES_DEFAULT_CONFIG "/etc/cables/cables.conf"
/* Where a Cables key server answers (doc/key-exchange.md); a Peer URL without a path means it. */
#define CABLES_EXCHANGE_PATH "/.well-known/cables/keys"

enum cipher_choice { CIPHER_AES256_CBC, CIPHER_AES256_GCM };
enum rsa_padding { RSA_PAD_PKCS1, RSA_PAD_OAEP };
enum format_preference { PREFER_SMIME, PREFER_PGP };
enum dnssec_mode { DNSSEC_REQUIRE, DNSSEC_PREFER };

/* "Peer DOMAIN URL [ExchangeKey=FPR] [TLSPin=sha256//BASE64]" */
struct peer {
	char *domain;		/* lowercase */
	char *url;		/* https://HOST[:PORT]/PATH (a URL given without a path gets CABLES_EXCHANGE_PATH) */
	char fpr[65];		/* the domain key's SHA-256 fingerprint (hex), or "" (then from DNSSEC) */
	char *tls_pin;		/* "sha256//BASE64", or NULL (then ExchangeCAFile) */
	unsigned int line;
};

struct config {
	char *path;			/* file it was loaded from, or "(defaults)" */

	char *socket;			/* Socket */
	unsigned int socket_mode;	/* SocketMode (unix sockets) */
	char *socket_group;		/* SocketGroup; NULL = unchanged */
	char *pid_file;			/* PidFile; NULL = none */
	char *user;			/* User to run as; NULL = stay as started */
	char *key_store;		/* KeyStore */
	char *key_store_key;		/* KeyStoreKey */
	struct domain_list local_domains;	/* LocalDomains */
	struct host_list internal_hosts;	/* InternalHosts */
	char *exit_daemon_name;		/* ExitDaemonName: the MTA's name for the exit listener; NULL = none */
	/*
	 * DefaultPolicy, Format, Sign, EncryptToSelf and the On-* keys are the
	 * defaults of this table; Policy lines are its entries (policy.h).
	 */
	struct policy_table policy;
	char *trust_anchors;		/* TrustAnchors: CA file or directory; NULL = none */
	bool harvest_certificates;	/* HarvestCertificates */
	enum cipher_choice cipher;	/* Cipher */
	enum rsa_padding rsa_padding;	/* RSAPadding */
	char *log_facility;		/* LogFacility */
	char *log_file;			/* LogFile; NULL = syslog (or stderr with -f) */
	char *temp_dir;			/* TempDir */
	char *gnupg_home;		/* GnuPGHome: the milter's GnuPG working copy */
	enum format_preference format_preference;	/* FormatPreference: Format auto, both keys */
	char *reinject_to;		/* ReinjectTo: inet:PORT@ADDRESS; NULL = no split delivery */
	char *reinject_key;		/* ReinjectKey: the key of re-injection markers */
	char *authserv_id;		/* AuthservID: our Authentication-Results fields; the host name if unset */
	char *reinject_daemon_name;	/* ReinjectDaemonName: {daemon_name} of the verify-only listener */
	char *sender_logins_path;	/* SenderLogins: who may sign as whom; NULL = none */
	struct sender_logins *sender_logins;	/* that file, read by config_load (owned) */
	bool sign_unauthenticated;	/* SignUnauthenticated: sign for unauthenticated submitters */
	size_t max_message_size;	/* MaxMessageSize; 0 = unlimited */
	char *keyd_socket;		/* KeydSocket; NULL = the milter does not ask keyd */
	char *keyd_pid_file;		/* KeydPidFile; NULL = none */
	char *keyd_admin_socket;	/* KeydAdminSocket (default: keyd-admin.sock beside KeydSocket); NULL = none */
	char *admin_group;		/* AdminGroup: may use KeydAdminSocket besides root; NULL = root only */
	char *keyd_user;		/* KeydUser: cables-keyd runs as; NULL = User */
	/* The key process (doc/privsep.md): the only one that unseals private keys. */
	char *keyholder_socket;		/* KeyholderSocket; NULL = no private keys in the milter */
	char *keyholder_user;		/* KeyholderUser: cables-keyholder runs as; NULL = stay as started */
	char *keyholder_log_file;	/* KeyholderLogFile; NULL = syslog (stderr with -f) */
	size_t keyholder_rate_limit;	/* KeyholderRateLimit: the default of the two below */
	size_t keyholder_sign_rate_limit;	/* KeyholderSignRateLimit: signatures a minute per address (or domain); 0 = none */
	size_t keyholder_decrypt_rate_limit;	/* KeyholderDecryptRateLimit: successful decryptions a minute per address; 0 = none */
	size_t keyholder_failure_rate_limit;	/* KeyholderFailureRateLimit: failed decryptions answered as such a minute per address */
	size_t keyholder_clients;	/* KeyholderClients: connections served at once (1..4096, cables-keyholder checks) */
	unsigned long keyholder_idle_timeout_ms;	/* KeyholderIdleTimeout: a connection idle this long is closed; 0 = never */
	unsigned long epoch_key_lifetime_ms;	/* EpochKeyLifetime: a new epoch key this often; 0 = none (doc/key-exchange.md) */
	unsigned long epoch_key_grace_ms;	/* EpochKeyGrace: an epoch private key is deleted this long after its expiry */
	char *resolver;			/* Resolver: ADDRESS[@PORT]; NULL = /etc/resolv.conf */
	char *dnssec_anchor;		/* DNSSECTrustAnchor: DS/DNSKEY records */
	enum dnssec_mode dnssec;	/* DNSSEC require|prefer */
	unsigned long lookup_timeout_ms;	/* LookupTimeout */
	unsigned long hold_time_ms;	/* HoldTime: how long a held message waits for keys before it is returned */
	char *hold_address;	/* HoldAddress: the only recipient of a held copy in the MTA's queue */
	/* HoldMax*: what the held messages may take in the key store (all, one sender's); 0 = unlimited */
	size_t hold_max_messages, hold_max_bytes, hold_max_sender_messages, hold_max_sender_bytes;
	char *mail_command;	/* MailCommand: sends notices and resubmits released messages (notice.h) */
	unsigned long unresponsive_time_ms;	/* UnresponsiveTime: how long a domain that did not answer is marked */
	unsigned long downgrade_memory_s;	/* DowngradeMemory: a domain seen encrypting is remembered this long; 0 = not */
	char *admin_address;		/* AdminAddress: where notices to the administrator go; NULL = none */
	unsigned long cache_min_ttl_ms;	/* CacheMinTTL */
	unsigned long cache_max_ttl_ms;	/* CacheMaxTTL */
	struct addr_opts addr;		/* RecipientDelimiter, LocalPartCaseSensitive */
	/* Key exchange between Cables servers (doc/key-exchange.md). */
	char *exchange_listen;		/* ExchangeListen: inet:PORT@ADDRESS; NULL = not served */
	char *exchange_cert;		/* ExchangeCertificate: PEM chain for the endpoint's TLS */
	char *exchange_cert_key;	/* ExchangeCertificateKey: its private key */
	char *exchange_key;		/* ExchangeKey: the domain's Ed25519 signing key (PEM) */
	char *exchange_ca_file;		/* ExchangeCAFile: CAs for peers' TLS; NULL = the system's */
	size_t exchange_rate_limit;	/* ExchangeRateLimit: requests a minute per client address; 0 = none */
	size_t exchange_anon_addresses;	/* ExchangeAnonymousAddresses: per unsigned request; 0 = unsigned refused */
	size_t exchange_anon_rate_limit;	/* ExchangeAnonymousRateLimit: unsigned requests a minute per client */
	bool key_exchange;		/* KeyExchange: ask peers for keys */
	bool wkd;			/* WKD: look keys up in the Web Key Directory */
	char *metrics_listen;		/* MetricsListen: the milter's /metrics, loopback ADDRESS:PORT; NULL = off */
	char *keyd_metrics_listen;	/* KeydMetricsListen: cables-keyd's /metrics; NULL = off */
	struct peer *peers;		/* Peer lines */
	size_t npeers;
};

/*
 * Load path.  When the file does not exist and must_exist is false, the
 * defaults are returned (cables-keyctl on a host without a config file).
 * On error returns NULL and fills err with "file:line: detail".
 */
struct config *config_load(const char *path, bool must_exist, struct cables_err *err);

/* The defaults only (tests, tools). Never fails. */
struct config *config_defaults(void);

/* Parse text as if it were a file named name (tests, fuzzing). */
struct config *config_parse(const char *name, const char *text, size_t len,
    struct cables_err *err);

/* Checks a program adds before running (the milter needs LocalDomains). */
cables_status config_check_milter(const struct config *c, struct cables_err *err);

void config_free(struct config *c);

const char *cipher_name(enum cipher_choice c);

/* Each documented key name, in table order, for tools and the docs test. */
size_t config_key_count(void);
const char *config_key_name(size_t i);
const char *config_key_default(size_t i);	/* NULL = unset */

#endif
