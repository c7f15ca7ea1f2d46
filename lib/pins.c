/* pins - the pin decision for learnt keys; see pins.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "pins.h"
#include "util.h"

int
pin_trust_rank(const char *source)
{
	if (source == NULL)
		return 0;
	return strcmp(source, "dns-dnssec") == 0 ? 3 : strcmp(source, "peer") == 0 ? 2 :
	    strcmp(source, "wkd") == 0 ? 1 : 0;
}

/* Move pin p to key r. */
static void
repin(struct key_pin *p, const struct key_record *r)
{
	strlcpy_c(p->fingerprint, r->fingerprint, sizeof(p->fingerprint));
	free(p->source);
	p->source = xstrdup(r->source);
	p->offered[0] = '\0';
}

cables_status
pin_check(struct keystore *ks, const struct policy_table *policy, const struct key_record *r, time_t now,
    struct pin_result *res, struct cables_err *err)
{
	struct key_pin p;
	cables_status st = keystore_pin_get(ks, r->address, r->format, &p, err);

	memset(res, 0, sizeof(*res));
	res->action = ACTION_ACCEPT;
	if (st != CABLES_OK && st != CABLES_ERR_NOTFOUND)
		return st;
	if (st == CABLES_ERR_NOTFOUND) {
		memset(&p, 0, sizeof(p));
		p.address = xstrdup(r->address);
		strlcpy_c(p.format, r->format, sizeof(p.format));
		strlcpy_c(p.fingerprint, r->fingerprint, sizeof(p.fingerprint));
		p.source = xstrdup(r->source);
		p.first_seen = now;
		res->verdict = PIN_NEW;
	} else {
		strlcpy_c(res->was, p.fingerprint, sizeof(res->was));
		strlcpy_c(res->was_source, p.source != NULL ? p.source : "", sizeof(res->was_source));
		if (strcmp(p.fingerprint, r->fingerprint) == 0) {
			/*
			 * The same key from a more trusted source: the pin takes that
			 * source, or a key from a source between the two would later
			 * "raise" it (and a harvested one would displace a key DNSSEC
			 * vouches for).
			 */
			if (pin_trust_rank(r->source) > pin_trust_rank(p.source)) {
				free(p.source);
				p.source = xstrdup(r->source);
			}
			p.offered[0] = '\0';
			res->verdict = PIN_SAME;
		} else if (pin_trust_rank(r->source) > pin_trust_rank(p.source)) {
			repin(&p, r);
			res->verdict = PIN_RAISED;
		} else if (strcmp(r->source, "harvested") == 0 && pin_trust_rank(p.source) > 0) {
			/* Mail never displaces a key DNSSEC, a key server or WKD gave, whatever On-KeyChange says. */
			res->action = ACTION_REJECT;
			strlcpy_c(p.offered, r->fingerprint, sizeof(p.offered));
			free(p.offered_source);
			p.offered_source = xstrdup(r->source);
			p.offered_at = now;
			res->verdict = PIN_HELD;
		} else {
			res->action = (enum fail_action)policy_get(policy, r->address, PA_ON_KEY_CHANGE, NULL);
			if (res->action == ACTION_ACCEPT) {
				repin(&p, r);
				p.changes++;
				res->verdict = PIN_CHANGED;
			} else {
				strlcpy_c(p.offered, r->fingerprint, sizeof(p.offered));
				free(p.offered_source);
				p.offered_source = xstrdup(r->source);
				p.offered_at = now;
				res->verdict = PIN_HELD;
			}
		}
	}
	p.last_seen = now;
	keystore_pin_set(ks, &p, NULL);
	key_pin_release(&p);
	return CABLES_OK;
}
