/*
 * downgrade - cables-keyd's side of "No downgrade" (doc/key-exchange.md):
 * a domain that offered a usable key through DNSSEC-validated DNS or the
 * key exchange is remembered in the key store (keystore.h, schema 4) for
 * DowngradeMemory after it last did; a domain that publishes a signed
 * _cables-policy p=require says so itself (a bogus or missing answer to
 * that query is a tempfail: it may have been stripped).  A lookup that
 * finds no key for an address there says "encrypting=" in its result
 * (keydproto.h), (a failed lookup there, or none for an address that had
 * a key), and the milter then treats the recipient as one under require.
 * The administrator (AdminAddress) is told once per such episode, and
 * once per pinned key that changes (at most once a day per domain).  A
 * notice that could not be sent is not recorded as told.  Declared in
 * keyd_private.h.
 *
 * Who can plant a memory: only a key keyd stored as dns-dnssec (a signed
 * answer for the address's own domain) or peer (an answer signed by the
 * domain's exchange key, for addresses of that domain), or the domain's
 * signed _cables-policy p=require (source "policy"); an unsigned or
 * bogus answer, WKD, a harvested certificate or an import never do, so a
 * forged answer on the path cannot make a domain's mail wait.  Who can
 * erase one: nobody on the network (a withdrawn key or a failed lookup is
 * exactly what it guards against); the memory runs out DowngradeMemory
 * after the last key, or the administrator forgets it (cables-keyctl
 * encrypting forget).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domainpolicy.h"
#include "keyd_private.h"
#include "log.h"
#include "notice.h"
#include "util.h"

/* The sources whose keys prove that their domain encrypts. */
const char *
keyd_source_proves_encrypting_name(const char *source)
{
	static const char *const names[] = { "dns-dnssec", "peer", KEYSTORE_PEER_EPOCH_SOURCE };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(source, names[i]) == 0)
			return names[i];
	return NULL;
}

bool
keyd_source_proves_encrypting(const char *source)
{
	return keyd_source_proves_encrypting_name(source) != NULL;
}

void
keyd_downgrade_seen(struct keyd *k, struct keyd_conf *c, const char *norm, const char *source, time_t now)
{
	const char *at = strrchr(norm, '@');
	struct cables_err err;

	if (at == NULL || c->cfg->downgrade_memory_s == 0)
		return;
	if (keystore_encrypting_note(k->ks, at + 1, source, now, &err) != CABLES_OK)
		log_warnx("keyd: %s: cannot remember it as encrypting: %s", at + 1, err.msg);
}

/* Send text to AdminAddress, if set; false (logged) when it could not be sent. */
static bool
tell_admin(struct keyd_conf *c, const char *subject, const char *text)
{
	struct cables_err err;

	if (c->cfg->admin_address == NULL)
		return true;
	if (notice_send(c->cfg->mail_command, c->cfg->admin_address, subject, text, &err) != CABLES_OK) {
		log_warnx("keyd: cannot tell %s (AdminAddress): %s", c->cfg->admin_address, err.msg);
		return false;
	}
	return true;
}

/* What a domain's _cables-policy says, as far as DNSSEC lets keyd know. */
enum published { PUBLISHED_NONE, PUBLISHED_REQUIRE, PUBLISHED_UNKNOWN };

/*
 * Does domain publish a DNSSEC-signed _cables-policy p=require?  A secure
 * answer is the domain's word either way, and so is a proven absence or a
 * zone proven unsigned; a bogus answer or none is PUBLISHED_UNKNOWN (why
 * says so): an attacker on the path could have stripped the statement.
 */
static enum published
published_policy(struct keyd *k, struct keyd_conf *c, const char *domain, time_t now, struct cables_err *why)
{
	struct dns_answer a;
	struct cables_err err;
	char *name = xasprintf(DOMAINPOLICY_LABEL ".%s", domain);
	size_t statements = 0;
	enum published result = PUBLISHED_NONE;

	memset(&a, 0, sizeof(a));
	/*
	 * Half of LookupTimeout: the lookup already spent some of it, and its
	 * answer ("none") says the domain's servers answer.
	 */
	if (k->txt(c, name, now, (unsigned int)c->cfg->lookup_timeout_ms / 2, &a, &err) != CABLES_OK) {
		cables_fail(why, CABLES_ERR_IO, "%s: %s", name, err.msg);
		result = PUBLISHED_UNKNOWN;
	} else if (a.status == DNS_SECURE) {
		for (size_t i = 0; i < a.n; i++) {
			enum domainpolicy p;
			const char *text = (const char *)a.recs[i].data;

			if (strncmp(text, "\"v=cables1", 10) != 0)
				continue;	/* another kind of TXT record at the name */
			statements++;
			if (domainpolicy_parse(text, strlen(text), &p, &err) == CABLES_OK)
				result = PUBLISHED_REQUIRE;
			else
				log_warnx("keyd: %s: ignored: %s", name, err.msg);
		}
		/* Two statements contradict or repeat each other: neither counts. */
		if (statements > 1) {
			log_warnx("keyd: %s: %zu v=cables1 records: ignored", name, statements);
			result = PUBLISHED_NONE;
		}
	} else if (a.status == DNS_BOGUS || a.status == DNS_TEMPFAIL) {
		log_info("keyd: %s: %s answer: cannot tell whether %s publishes p=require", name,
		    dns_status_name(a.status), domain);
		cables_fail(why, CABLES_ERR_IO, "%s: %s answer (%s)", name, dns_status_name(a.status), a.reason);
		result = PUBLISHED_UNKNOWN;
	}
	dns_answer_release(&a);
	free(name);
	return result;
}

/* The administrator hears once that domain's recipients go without keys (logged either way). */
static void
tell_downgrade(struct keyd *k, struct keyd_conf *c, const char *norm, const struct encrypting_domain *d,
    const char *reason, time_t now)
{
	char first[32], last[32], *subject, *text;
	struct cables_err err;
	bool tell;

	/* Once per DowngradeMemory: a domain with keyless and keyed users would otherwise be told of again and again. */
	if (keystore_encrypting_tell(k->ks, d->domain, now, now - (time_t)c->cfg->downgrade_memory_s, &tell, &err) !=
	    CABLES_OK) {
		log_warnx("keyd: %s: %s", d->domain, err.msg);
		return;
	}
	if (!tell)
		return;
	format_day(d->first_seen, first, sizeof(first));
	format_day(d->last_seen, last, sizeof(last));
	log_warnx("keyd: %s: remembered as encrypting since %s (%s, last %s) but no usable key for %s (%s): its "
	    "recipients under policy encrypt are treated as under require (DowngradeMemory)%s%s", d->domain, first,
	    d->source, last, norm, reason, c->cfg->admin_address != NULL ? "; telling " : "",
	    c->cfg->admin_address != NULL ? c->cfg->admin_address : "");
	subject = xasprintf("Cables: %s offers no encryption key now; its mail waits", d->domain);
	text = xasprintf("The domain %s offered encryption keys (through %s) since %s, last on %s.\n"
	    "Now Cables finds no usable key for %s:\n  %s\n\n"
	    "Mail to %s under policy encrypt is not sent in plaintext: it is treated as\n"
	    "under policy require (On-KeyNotFound) until keys are found again, or until\n"
	    "DowngradeMemory (%lu days) has passed since they were last seen.\n\n"
	    "If %s stopped encrypting on purpose, let plaintext go now with\n"
	    "  cables-keyctl encrypting forget %s\n\n"
	    "You are told of %s once in DowngradeMemory.\n", d->domain, d->source, first, last, norm, reason, d->domain,
	    c->cfg->downgrade_memory_s / 86400, d->domain, d->domain, d->domain);
	/* Not sent: not told, so that the next occurrence tries again. */
	if (!tell_admin(c, subject, text)) {
		if (keystore_encrypting_untell(k->ks, d->domain, now, (time_t)d->told, &err) != CABLES_OK)
			log_warnx("keyd: %s: %s", d->domain, err.msg);
		else
			log_info("keyd: %s: the notice will be sent on the next occurrence", d->domain);
	}
	free(subject);
	free(text);
}

/* Was a key that proves its domain encrypts ever found for norm?  Its pin says so (pins outlive keys). */
static bool
had_key(struct keyd *k, const char *norm)
{
	static const char *const formats[] = { "smime", "pgp" };
	bool had = false;

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]) && !had; i++) {
		struct key_pin p;

		if (keystore_pin_get(k->ks, norm, formats[i], &p, NULL) != CABLES_OK)
			continue;
		had = keyd_source_proves_encrypting(p.source);
		key_pin_release(&p);
	}
	return had;
}

enum keyd_encrypting
keyd_downgrade_check(struct keyd *k, struct keyd_conf *c, const char *norm, enum keyd_outcome o, const char *reason,
    time_t now, long long *since, bool *failed, struct cables_err *why)
{
	const char *at = strrchr(norm, '@');
	struct encrypting_domain d;

	*since = 0;
	*failed = false;
	if (at == NULL || o == KEYD_OUTCOME_FOUND || o == KEYD_OUTCOME_REJECT ||
	    domain_list_match(&c->cfg->local_domains, at + 1))
		return KEYD_ENCRYPTING_NO;
	/*
	 * At a remembered domain: a failed lookup (bogus, no answer: what an
	 * attacker on the path can cause) for any address, and "none" for an
	 * address that had a key (withdrawn).  An address never seen with a
	 * key whose absence DNSSEC proves is the domain's own word: domains
	 * that give keys to some users only stay usable for the others.
	 */
	if (c->cfg->downgrade_memory_s > 0 && keystore_encrypting_get(k->ks, at + 1, &d, NULL) == CABLES_OK &&
	    d.last_seen + (long long)c->cfg->downgrade_memory_s >= (long long)now &&
	    (o == KEYD_OUTCOME_TEMPFAIL || had_key(k, norm))) {
		*since = d.first_seen;
		tell_downgrade(k, c, norm, &d, reason != NULL ? reason : "no key", now);
		return KEYD_ENCRYPTING_REMEMBERED;
	}
	/* A failed lookup says nothing the TXT query would not fail on too: no second wait. */
	if (o != KEYD_OUTCOME_NONE)
		return KEYD_ENCRYPTING_NO;
	switch (published_policy(k, c, at + 1, now, why)) {
	case PUBLISHED_REQUIRE:
		/* Remembered too, so that a lookup that fails later is covered (DowngradeMemory). */
		keyd_downgrade_seen(k, c, norm, "policy", now);
		return KEYD_ENCRYPTING_PUBLISHED;
	case PUBLISHED_UNKNOWN:
		*failed = true;
		return KEYD_ENCRYPTING_NO;
	case PUBLISHED_NONE:
		break;
	}
	return KEYD_ENCRYPTING_NO;
}

/* What the key change alerts already told say of a change of r's key from was. */
enum alerted { ALERTED_NOT, ALERTED_PAIR, ALERTED_DOMAIN };

/* One alert a day per domain at most: a flood of changes (a domain's rekeying, an attack) is one mail. */
#define KEY_CHANGE_ALERT_EVERY (24 * 3600)

static enum alerted
key_change_alerted(struct keyd *k, const struct key_record *r, const char *was, time_t now)
{
	const char *at = strrchr(r->address, '@');
	struct key_change_alert *a = NULL;
	enum alerted result = ALERTED_NOT;
	size_t n = 0;

	if (at == NULL || keystore_key_change_list(k->ks, &a, &n, NULL) != CABLES_OK)
		return ALERTED_NOT;
	for (size_t i = 0; i < n && result != ALERTED_PAIR; i++) {
		const char *other = strrchr(a[i].address, '@');

		if (strcmp(a[i].address, r->address) == 0 && strcmp(a[i].format, r->format) == 0 &&
		    strcmp(a[i].old, was) == 0 && strcmp(a[i].new, r->fingerprint) == 0)
			result = ALERTED_PAIR;
		else if (other != NULL && strcasecmp(other + 1, at + 1) == 0 && a[i].told > now - KEY_CHANGE_ALERT_EVERY)
			result = ALERTED_DOMAIN;
	}
	free(a);
	return result;
}

void
keyd_key_change_alert(struct keyd *k, struct keyd_conf *c, const struct key_record *r, const char *was,
    const char *was_source, const char *action, time_t now)
{
	char *subject, *text;
	struct cables_err err;
	bool tell;

	/* Recorded only when told: an AdminAddress set later hears of the next change. */
	if (c->cfg->admin_address == NULL)
		return;
	/* Alerts are kept for DowngradeMemory (a day at least): after that a pair may be told again. */
	if (keystore_key_change_prune(k->ks, now - (time_t)(c->cfg->downgrade_memory_s > KEY_CHANGE_ALERT_EVERY ?
	    c->cfg->downgrade_memory_s : KEY_CHANGE_ALERT_EVERY), &err) != CABLES_OK)
		log_warnx("keyd: %s", err.msg);
	switch (key_change_alerted(k, r, was, now)) {
	case ALERTED_PAIR:
		return;
	case ALERTED_DOMAIN:
		log_warnx("keyd: %s: key change %.16s -> %.16s (from %s, On-KeyChange %s): not mailed, %s (AdminAddress) "
		    "was told of a key change at its domain within a day", r->address, was, r->fingerprint, r->source,
		    action, c->cfg->admin_address);
		return;
	case ALERTED_NOT:
		break;
	}
	if (keystore_key_change_tell(k->ks, r->address, r->format, was, r->fingerprint, now, &tell, &err) != CABLES_OK) {
		log_warnx("keyd: %s: %s", r->address, err.msg);
		return;
	}
	if (!tell)
		return;
	log_info("keyd: %s: telling %s (AdminAddress) of the key change %.16s -> %.16s", r->address,
	    c->cfg->admin_address, was, r->fingerprint);
	subject = xasprintf("Cables: the %s key of %s changed", strcmp(r->format, "pgp") == 0 ? "OpenPGP" : "S/MIME",
	    r->address);
	text = xasprintf("The pinned key of %s changed.\n\n"
	    "  pinned (old): %s (from %s)\n"
	    "  offered (new): %s (from %s)\n\n"
	    "On-KeyChange is %s for this address: %s\n\n"
	    "If the new key is genuine, accept it with\n  cables-keyctl pins clear %s\n\n"
	    "You are told once for this pair of keys, and of one key change per domain\n"
	    "a day (later ones are logged).\n", r->address, was, was_source, r->fingerprint, r->source,
	    action, strcmp(action, "accept") == 0 ? "the new key is used and pinned." :
	    "the new key is not used; mail to the address waits (tempfail) or is refused (reject).", r->address);
	/* Not sent: not told, so that the next occurrence tries again. */
	if (!tell_admin(c, subject, text)) {
		if (keystore_key_change_untell(k->ks, r->address, r->format, was, r->fingerprint, &err) != CABLES_OK)
			log_warnx("keyd: %s: %s", r->address, err.msg);
		else
			log_info("keyd: %s: the key change alert will be sent on the next occurrence", r->address);
	}
	free(subject);
	free(text);
}
