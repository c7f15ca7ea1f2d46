/*
 * keyctl_publish - "cables-keyctl publish --dns [--domain D]": zone-file
 * lines that publish local users' keys in DNS, as opendkim-genzone does
 * for DKIM: OPENPGPKEY (RFC 7929, the binary public key) and SMIMEA
 * 3 0 0 (RFC 8162: DANE-EE, the full certificate, no hash).  Only keys of
 * local addresses (LocalDomains, or --domain) that are usable now are
 * printed; the zone must be DNSSEC-signed for peers to trust them.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "addr.h"
#include "dns.h"
#include "domainpolicy.h"
#include "epoch.h"
#include "exchange.h"
#include "khsign.h"
#include "keyctl.h"
#include "keydproto.h"
#include "keystore.h"
#include "lookup.h"
#include "pgp.h"
#include "smime.h"
#include "util.h"
#include "wkd.h"

/*
 * Is store row r a key to publish: of a local address (or one in only),
 * in format (NULL: any), and usable now?  An unusable one is named on
 * stderr with the reason.
 */
static bool
publishable(const struct ctx *c, const struct key_record *r, const char *format, const char *only)
{
	const char *at = strrchr(r->address, '@');
	char why[CABLES_ERR_MAX];

	if (at == NULL || (format != NULL && strcmp(r->format, format) != 0) ||
	    (only != NULL ? !str_ieq(at + 1, only) : !domain_list_match(&c->cfg->local_domains, at + 1)))
		return false;
	if (!keyd_record_usable(r, &c->cfg->addr, NULL, c->now, why, sizeof(why))) {
		fprintf(stderr, "cables-keyctl: not published: %s key %.16s of %s: %s\n", r->format, r->fingerprint,
		    r->address, why);
		return false;
	}
	return true;
}

/* mkdir -p of path (mode 0755); die with the reason. */
static void
make_dirs(const char *path)
{
	char *p = xstrdup(path), c;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			keyctl_die("%s: %s", p, strerror(errno));
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
}

/*
 * "publish --wkd DIR": a Web Key Directory for local users' OpenPGP keys,
 * in the layout of the advanced method (as gpg-wks-client --install-key
 * makes it): DIR/DOMAIN/hu/HASH holds the address's keys, DIR/DOMAIN/policy
 * is there (empty).  DIR is what https://openpgpkey.DOMAIN/.well-known/openpgpkey/
 * serves.  Files are replaced whole (written aside, then renamed).
 */
static int
publish_wkd(struct ctx *c, const char *dir, const char *only)
{
	struct key_list keys;
	struct cables_err err;
	int written = 0;

	open_store(c, false);
	if (keystore_list(c->ks, true, &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		const char *at = strrchr(r->address, '@'), *domain = at != NULL ? at + 1 : "";
		char hash[33], *local, *path, *tmp;
		int fd;

		if (!publishable(c, r, "pgp", only))
			continue;
		local = xstrndup(r->address, (size_t)(at - r->address));
		wkd_hash(local, hash);
		free(local);
		path = xasprintf("%s/%s/hu", dir, domain);
		make_dirs(path);
		free(path);
		path = xasprintf("%s/%s/policy", dir, domain);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
			keyctl_die("%s: %s", path, strerror(errno));
		close(fd);
		free(path);
		path = xasprintf("%s/%s/hu/%s", dir, domain, hash);
		tmp = xasprintf("%s.tmp", path);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
		    !write_fully(fd, r->public_data, r->public_len) || close(fd) != 0 || rename(tmp, path) != 0)
			keyctl_die("%s: %s", path, strerror(errno));
		printf("%s: %s (OpenPGP key %.16s)\n", r->address, path, r->fingerprint);
		free(tmp);
		free(path);
		written++;
	}
	key_list_release(&keys);
	if (written == 0)
		keyctl_die("no usable OpenPGP key of a local user to publish%s%s", only != NULL ? " for " : "",
		    only != NULL ? only : "");
	return 0;
}

/*
 * The _cables-policy TXT record (domainpolicy.h) of each local domain (or
 * only) whose policy is require: peers then never send its users
 * plaintext, even before they saw a key.  How many were printed.
 */
static int
publish_policy(const struct ctx *c, const char *only)
{
	int printed = 0;

	for (size_t i = 0; i < c->cfg->local_domains.count; i++) {
		const char *d = c->cfg->local_domains.names[i];
		/* "@DOMAIN" matches no address entry: the domain's own policy (or the default). */
		char *at_domain = xasprintf("@%s", d);
		bool require = policy_get(&c->cfg->policy, at_domain, PA_POLICY, NULL) == POLICY_REQUIRE;

		free(at_domain);
		if (d[0] == '.' || !require || (only != NULL && strcmp(only, d) != 0))
			continue;
		if (printed++ == 0)
			printf("; Cables: local domains whose policy is require (doc/key-exchange.md, \"No downgrade\").\n");
		printf("%s.%s. IN TXT \"%s\"\n", DOMAINPOLICY_LABEL, d, DOMAINPOLICY_REQUIRE_TEXT);
	}
	return printed;
}

/* One zone-file record for store row r at owner, with its TTL (< 0: the zone's default). */
static void
print_record(const struct key_record *r, const char *owner, bool pgp, long long ttl)
{
	printf("; %s %s%s %s\n%s ", r->address, pgp ? "OpenPGP" : "S/MIME", ttl >= 0 ? " epoch key" : "", r->fingerprint,
	    owner);
	if (ttl >= 0)
		printf("%lld ", ttl);
	printf("IN ");
	if (pgp) {
		/* Base64 in lines of 64, inside parentheses (zone-file syntax). */
		size_t blen = 4 * ((r->public_len + 2) / 3) + 1;
		char *b64 = xmalloc(blen);
		size_t n = (size_t)EVP_EncodeBlock((unsigned char *)b64, r->public_data, (int)r->public_len);

		printf("OPENPGPKEY (");
		for (size_t k = 0; k < n; k += 64)
			printf("\n\t%.64s", b64 + k);
		printf(" )\n");
		free(b64);
	} else {
		printf("SMIMEA 3 0 0 (");
		for (size_t k = 0; k < r->public_len; k++)
			printf("%s%02x", k % 32 == 0 ? "\n\t" : "", r->public_data[k]);
		printf(" )\n");
	}
}

/*
 * "publish --dns --epoch": the current epoch key of each local user and
 * format, the very one keyd serves in exchange answers: the one
 * cables-keyholder vouches for (epoch-current; the milter can write epoch
 * rows, so the store alone is not enough), with a TTL of half the overlap
 * (doc/key-exchange.md): a resolver's copy then outlives a rotation by at
 * most that, if the zone is updated within the other half.
 */
static int
publish_epoch_dns(struct ctx *c, const char *only)
{
	long long lifetime = (long long)(c->cfg->epoch_key_lifetime_ms / 1000);
	struct epoch_times t = { lifetime, 0 };
	long long ttl = epoch_overlap(&t) / 2;
	struct key_list keys;
	struct cables_err err;
	struct khsign *kh;
	int printed = 0;

	if (lifetime <= 0)
		keyctl_die("EpochKeyLifetime is 0: no epoch keys to publish");
	if (c->cfg->keyholder_socket == NULL)
		keyctl_die("publishing epoch keys needs cables-keyholder (KeyholderSocket is none): it says which are genuine");
	open_store(c, false);
	if (keystore_list(c->ks, true, &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	kh = khsign_new(c->cfg->keyholder_socket);
	printf("; Cables: current epoch keys of local users, for DNS (OPENPGPKEY, RFC 7929; SMIMEA 3 0 0, RFC 8162),\n"
	    "; TTL %lld s (half of the epoch keys' overlap).  Replace them at every rotation (EpochKeyLifetime), within\n"
	    "; %lld s of it, and sign the zone with DNSSEC.\n", ttl, epoch_overlap(&t) - ttl);
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		const char *at = strrchr(r->address, '@');
		bool pgp = strcmp(r->format, "pgp") == 0, found = false;
		uint8_t want[32], got[32];
		struct key_list epochs;
		const struct key_record *e = NULL;
		char *local, *owner;

		/* Once per address and format (rows come by address and format), for a local user's own key. */
		if ((i > 0 && strcmp(keys.items[i - 1].address, r->address) == 0 &&
		    strcmp(keys.items[i - 1].format, r->format) == 0) || r->secret_data == NULL ||
		    !publishable(c, r, NULL, only))
			continue;
		if (khsign_epoch(kh, r->address, r->format, want, &found, &err) != CABLES_OK)
			keyctl_die("%s: %s", r->address, err.msg);
		if (!found || keystore_epoch_list(c->ks, r->address, true, &epochs, &err) != CABLES_OK)
			continue;
		for (size_t j = 0; j < epochs.count && e == NULL; j++) {
			SHA256(epochs.items[j].public_data, epochs.items[j].public_len, got);
			if (strcmp(epochs.items[j].source, KEYSTORE_EPOCH_SOURCE) == 0 &&
			    strcmp(epochs.items[j].format, r->format) == 0 && memcmp(got, want, 32) == 0)
				e = &epochs.items[j];
		}
		if (e != NULL) {
			local = xstrndup(r->address, (size_t)(at - r->address));
			owner = dns_owner_name(local, at + 1, pgp ? DNS_OPENPGPKEY : DNS_SMIMEA);
			free(local);
			if (owner == NULL)
				keyctl_die("cannot hash the local part of %s", r->address);
			print_record(e, owner, pgp, ttl);
			free(owner);
			printed++;
		}
		key_list_release(&epochs);
	}
	khsign_free(kh);
	key_list_release(&keys);
	if (printed == 0)
		keyctl_die("no current epoch key of a local user to publish%s%s", only != NULL ? " for " : "",
		    only != NULL ? only : "");
	return 0;
}

int
keyctl_publish(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns", no_argument, NULL, 'd' }, { "domain", required_argument, NULL, 'D' },
		{ "wkd", required_argument, NULL, 'w' }, { "epoch", no_argument, NULL, 'e' }, { NULL, 0, NULL, 0 } };
	const char *only = NULL, *wkd = NULL;
	struct key_list keys;
	struct cables_err err;
	bool dns = false, epoch = false;
	int ch, printed = 0;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': dns = true; break;
		case 'D': only = optarg; break;
		case 'w': wkd = optarg; break;
		case 'e': epoch = true; break;
		default: keyctl_usage(NULL);
		}
	}
	if (dns == (wkd != NULL))
		keyctl_usage("publish needs --dns or --wkd DIR");
	if (optind != argc)
		keyctl_usage("publish takes no arguments besides its options");
	if (epoch && !dns)
		keyctl_usage("--epoch goes with publish --dns");
	if (wkd != NULL)
		return publish_wkd(c, wkd, only);
	if (epoch)
		return publish_epoch_dns(c, only);
	open_store(c, false);
	if (keystore_list(c->ks, true, &keys, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	printf("; Cables: keys of local users, for DNS (OPENPGPKEY, RFC 7929; SMIMEA 3 0 0, RFC 8162).\n"
	    "; Add to the zone of each domain and sign it with DNSSEC: peers trust only signed answers.\n");
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		const char *at = strrchr(r->address, '@'), *domain = at != NULL ? at + 1 : "";
		char *local, *owner;
		bool pgp = strcmp(r->format, "pgp") == 0;

		if (!publishable(c, r, NULL, only))
			continue;
		local = xstrndup(r->address, (size_t)(at - r->address));
		owner = dns_owner_name(local, domain, pgp ? DNS_OPENPGPKEY : DNS_SMIMEA);
		free(local);
		if (owner == NULL)
			keyctl_die("cannot hash the local part of %s", r->address);
		print_record(r, owner, pgp, -1);
		free(owner);
		printed++;
	}
	key_list_release(&keys);
	printed += publish_policy(c, only);
	if (printed == 0)
		keyctl_die("no usable key of a local user to publish%s%s", only != NULL ? " for " : "",
		    only != NULL ? only : "");
	return 0;
}

/*
 * "cables-keyctl lookup ADDRESS...": ask cables-keyd, as the milter does,
 * and say where each key came from and how far it is trusted.
 */
int
keyctl_lookup(struct ctx *c, int argc, char **argv)
{
	struct buf req, reply;
	struct keyd_lookup_reply answer;
	struct cables_err err;
	int rc = 0;

	if (argc < 2)
		keyctl_usage("lookup needs at least one ADDRESS");
	if (c->cfg->keyd_socket == NULL)
		keyctl_die("%s: KeydSocket is none: there is no cables-keyd to ask", c->cfg->path);
	buf_init(&req);
	buf_init(&reply);
	if (keyd_lookup_request_format(&req, (const char *const *)argv + 1, (size_t)argc - 1, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (keyd_call(c->cfg->keyd_socket, &req, c->cfg->lookup_timeout_ms * 2 + 1000, &reply, &err) != CABLES_OK ||
	    keyd_lookup_reply_parse(reply.data, reply.len, &answer, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < answer.n; i++) {
		const struct keyd_result *res = &answer.results[i];

		for (size_t k = 0; k < res->nkeys; k++) {
			const struct keyd_key *key = &res->keys[k];
			char until[32];

			format_day(key->expires, until, sizeof(until));
			printf("%s: %s key %.16s, from %s (%s), expires %s\n", key->address,
			    key->format == KEYD_FORMAT_PGP ? "OpenPGP" : "S/MIME", key->fingerprint,
			    keyd_source_name(key->source), key->trust == KEYD_TRUST_DNSSEC ? "DNSSEC validated" :
			    key->source == KEYD_SOURCE_HARVESTED ? "from signed mail; its domain publishes none" :
			    key->trust == KEYD_TRUST_LOCAL ? "held locally" : "not validated", until);
		}
		if (res->outcome != KEYD_OUTCOME_FOUND) {
			printf("%s: %s%s%s\n", res->address, keyd_outcome_name(res->outcome),
			    res->reason[0] != '\0' ? " reason=" : "", res->reason);
			if (res->encrypting == KEYD_ENCRYPTING_REMEMBERED) {
				char since[32];

				format_day(res->since, since, sizeof(since));
				printf("%s: no plaintext: its domain is remembered as encrypting since %s (DowngradeMemory)\n",
				    res->address, since);
			} else if (res->encrypting == KEYD_ENCRYPTING_PUBLISHED) {
				printf("%s: no plaintext: its domain publishes _cables-policy p=require\n", res->address);
			}
			rc = 1;
		}
	}
	keyd_lookup_reply_release(&answer);
	buf_release(&req);
	buf_release(&reply);
	return rc;
}

/*
 * "cables-keyctl exchange-key generate|show [--domain D]": the domain's
 * key-exchange key (ExchangeKey, Ed25519), and the DNS records that bind it
 * to each local domain (or D): the TXT record with its fingerprint, next to
 * the SRV record that says where the key server listens.
 */
int
keyctl_exchange_key(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = { { "domain", required_argument, NULL, 'D' }, { NULL, 0, NULL, 0 } };
	const char *only = NULL;
	struct cables_err err;
	EVP_PKEY *key;
	char txt[128], fpr[65];
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'D':
			if (!domain_valid(optarg))
				keyctl_usage("--domain: '%s' is not a domain", optarg);
			only = optarg;
			break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "generate") != 0 && strcmp(argv[optind], "show") != 0))
		keyctl_usage("exchange-key needs generate or show");
	if (c->cfg->exchange_key == NULL)
		keyctl_die("%s: ExchangeKey is not set: where should the key be?", c->cfg->path);
	if (strcmp(argv[optind], "generate") == 0) {
		if (x_key_generate(c->cfg->exchange_key, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		fprintf(stderr, "cables-keyctl: made the key-exchange key %s (Ed25519, mode 0600)\n", c->cfg->exchange_key);
	}
	if ((key = x_key_load(c->cfg->exchange_key, &err)) == NULL)
		keyctl_die("%s", err.msg);
	x_key_fingerprint(key, fpr);
	x_key_txt(key, txt, sizeof(txt));
	printf("; Cables key exchange: the domain key's fingerprint %s.\n"
	    "; Publish in each domain's DNSSEC-signed zone (with an SRV record for the key server's host and port):\n",
	    fpr);
	if (only != NULL) {
		printf("_cables-keys._tcp.%s. IN TXT \"%s\"\n", only, txt);
	} else {
		for (size_t i = 0; i < c->cfg->local_domains.count; i++)
			if (c->cfg->local_domains.names[i][0] != '.')
				printf("_cables-keys._tcp.%s. IN TXT \"%s\"\n", c->cfg->local_domains.names[i], txt);
	}
	printf("; _cables-keys._tcp.DOMAIN. IN SRV 0 0 PORT HOST.\n");
	EVP_PKEY_free(key);
	return 0;
}

/*
 * "cables-keyctl pins [list]" and "pins clear ADDRESS": the keys first seen
 * for addresses in DNS or from key servers, the times they changed, and a
 * different key held back (On-KeyChange tempfail/reject).  Clearing the
 * pins of an address lets the next lookup pin whatever it finds.
 */
int
keyctl_pins(struct ctx *c, int argc, char **argv)
{
	struct key_pin *pins;
	struct cables_err err;
	size_t n, deleted;
	char *addr;

	if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) {
		open_store(c, false);
		if (keystore_pin_list(c->ks, &pins, &n, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		printf("%-32s %-6s %-16s %-10s %-10s %-7s %s\n", "ADDRESS", "FORMAT", "PINNED", "SOURCE", "SINCE", "CHANGES",
		    "HELD BACK");
		for (size_t i = 0; i < n; i++) {
			char since[32], at[32];

			format_day(pins[i].first_seen, since, sizeof(since));
			format_day(pins[i].offered_at, at, sizeof(at));
			printf("%-32s %-6s %-16.16s %-10s %-10s %-7lld ", pins[i].address, pins[i].format, pins[i].fingerprint,
			    pins[i].source, since, pins[i].changes);
			if (pins[i].offered[0] != '\0')
				printf("%.16s (%s, %s)\n", pins[i].offered, pins[i].offered_source, at);
			else
				printf("-\n");
			key_pin_release(&pins[i]);
		}
		free(pins);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "clear") != 0)
		keyctl_usage("pins takes list, or clear ADDRESS");
	addr = normalized(c, argv[2]);
	open_store(c, false);
	if (keystore_pin_delete(c->ks, addr, &deleted, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	printf("cleared %zu pin%s of %s: the next lookup pins what it finds\n", deleted, deleted == 1 ? "" : "s", addr);
	free(addr);
	return 0;
}

/*
 * "cables-keyctl encrypting [list]" and "encrypting forget DOMAIN": the
 * domains cables-keyd remembers as encrypting (DowngradeMemory), since
 * when, through what, until when, and whether the administrator was told
 * that they went without keys.  Forgetting a domain lets plaintext go to
 * it under policy encrypt until it offers a key again.
 */
int
keyctl_encrypting(struct ctx *c, int argc, char **argv)
{
	struct encrypting_domain *rows;
	struct cables_err err;
	size_t n;
	char *domain;

	if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) {
		open_store(c, false);
		if (keystore_encrypting_list(c->ks, NULL, &rows, &n, &err) != CABLES_OK)
			keyctl_die("%s", err.msg);
		printf("%-32s %-10s %-10s %-10s %-10s %s\n", "DOMAIN", "SOURCE", "SINCE", "LAST", "UNTIL", "TOLD");
		for (size_t i = 0; i < n; i++) {
			char since[32], last[32], until[32], told[32];
			long long end = rows[i].last_seen + (long long)c->cfg->downgrade_memory_s;

			format_day(rows[i].first_seen, since, sizeof(since));
			format_day(rows[i].last_seen, last, sizeof(last));
			format_day(end, until, sizeof(until));
			format_day(rows[i].told, told, sizeof(told));
			printf("%-32s %-10s %-10s %-10s %-10s %s\n", rows[i].domain, rows[i].source, since, last,
			    end < (long long)c->now ? "expired" : until, rows[i].told != 0 ? told : "-");
		}
		free(rows);
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "forget") != 0)
		keyctl_usage("encrypting takes list, or forget DOMAIN");
	if ((domain = addr_domain_normalize(argv[2])) == NULL)
		keyctl_die("'%s' is not a domain", argv[2]);
	open_store(c, false);
	if (keystore_encrypting_forget(c->ks, domain, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	printf("forgot %s: mail to it under policy encrypt goes in plaintext when no key is found, until it offers "
	    "one again\n", domain);
	free(domain);
	return 0;
}
