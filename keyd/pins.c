/*
 * pins - the first key cables-keyd saw for an address and format, pinned:
 * the same key refreshes its pin, a key from a more trusted source (a
 * DNSSEC record > a domain-signed key-server answer > WKD > the rest)
 * replaces it, any other key is a key change that On-KeyChange decides.
 * Declared in keyd_private.h.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_private.h"
#include "log.h"
#include "policy.h"

/* How far a discovery source is trusted, for pins: a DNSSEC record over a domain-signed answer over the rest. */
static int
trust_rank(const char *source)
{
	return strcmp(source, "dns-dnssec") == 0 ? 3 : strcmp(source, "peer") == 0 ? 2 : strcmp(source, "wkd") == 0 ? 1 : 0;
}

/*
 * The pin of norm's key in r->format, before r (discovered) is stored: the
 * first key seen is pinned; the same key refreshes it; a key from a more
 * trusted source replaces it; a different key from a source no more
 * trusted is a key change, which On-KeyChange decides.  True when r may be
 * stored and used.
 */
bool
keyd_pin_check(struct keyd *k, struct keyd_conf *c, const struct key_record *r, time_t now, struct held *held)
{
	enum fail_action action;
	struct key_pin p;
	cables_status st = keystore_pin_get(k->ks, r->address, r->format, &p, NULL);
	char was[65];

	if (st != CABLES_OK && st != CABLES_ERR_NOTFOUND) {
		/* Fail closed: a key whose pin cannot be read is not used; the lookup waits. */
		log_warnx("keyd: %s: cannot read the pin of its %s key: not used now", r->address, r->format);
		if (held != NULL) {
			held->action = ACTION_TEMPFAIL;
			snprintf(held->why, sizeof(held->why), "the key store cannot be read (pins)");
		}
		return false;
	}
	if (st == CABLES_ERR_NOTFOUND) {
		memset(&p, 0, sizeof(p));
		p.address = xstrdup(r->address);
		strlcpy_c(p.format, r->format, sizeof(p.format));
		strlcpy_c(p.fingerprint, r->fingerprint, sizeof(p.fingerprint));
		p.source = xstrdup(r->source);
		p.first_seen = now;
	} else if (strcmp(p.fingerprint, r->fingerprint) == 0) {
		p.offered[0] = '\0';
	} else if (trust_rank(r->source) > trust_rank(p.source)) {
		log_info("keyd: %s: the pinned %s key %.16s (%s) gives way to %.16s from a more trusted source (%s)",
		    r->address, r->format, p.fingerprint, p.source, r->fingerprint, r->source);
		strlcpy_c(p.fingerprint, r->fingerprint, sizeof(p.fingerprint));
		free(p.source);
		p.source = xstrdup(r->source);
		p.offered[0] = '\0';
	} else {
		action = (enum fail_action)policy_get(&c->cfg->policy, r->address, PA_ON_KEY_CHANGE, NULL);
		strlcpy_c(was, p.fingerprint, sizeof(was));
		log_warnx("keyd: %s: key change: %s key %.16s from %s, but %.16s (%s) is pinned: %s (On-KeyChange)",
		    r->address, r->format, r->fingerprint, r->source, was, p.source, fail_action_name(action));
		pthread_mutex_lock(&k->lock);
		k->key_changes++;
		pthread_mutex_unlock(&k->lock);
		if (action == ACTION_ACCEPT) {
			strlcpy_c(p.fingerprint, r->fingerprint, sizeof(p.fingerprint));
			free(p.source);
			p.source = xstrdup(r->source);
			p.offered[0] = '\0';
			p.changes++;
		} else {
			strlcpy_c(p.offered, r->fingerprint, sizeof(p.offered));
			free(p.offered_source);
			p.offered_source = xstrdup(r->source);
			p.offered_at = now;
			if (held != NULL) {
				held->action = (int)action;
				snprintf(held->why, sizeof(held->why),
				    "key change: %s key %.16s offered, %.16s pinned (On-KeyChange %s; cables-keyctl pins clear %s "
				    "accepts the new key)", r->format, r->fingerprint, was, fail_action_name(action), r->address);
			}
		}
	}
	p.last_seen = now;
	keystore_pin_set(k->ks, &p, NULL);
	st = strcmp(p.fingerprint, r->fingerprint) == 0 ? CABLES_OK : CABLES_ERR_UNUSABLE;
	key_pin_release(&p);
	return st == CABLES_OK;
}
