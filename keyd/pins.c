/*
 * pins - cables-keyd's side of pinning discovered keys: the decision is
 * lib/pins.c's (shared with the milter's harvesting), keyd logs it, counts
 * key changes and turns a change held back by On-KeyChange into the
 * lookup's answer.  Declared in keyd_private.h.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_private.h"
#include "log.h"
#include "pins.h"
#include "policy.h"

/*
 * The pin of r's address moved from key was (its source was_source) to r:
 * if was is stored as harvested, it is deleted.  A harvested certificate is
 * used only while pinned, so it would only linger (and make the milter call
 * its next arrival "held already" rather than refuse it).
 */
static void
forget_harvested(struct keyd *k, const struct key_record *r, const struct pin_result *res)
{
	struct key_list keys;
	bool harvested = false;
	size_t deleted;

	if (strcmp(res->was_source, "harvested") != 0 ||
	    keystore_lookup(k->ks, r->address, r->format, &keys, NULL) != CABLES_OK)
		return;
	for (size_t i = 0; i < keys.count; i++)
		if (strcmp(keys.items[i].fingerprint, res->was) == 0 && strcmp(keys.items[i].source, "harvested") == 0)
			harvested = true;
	key_list_release(&keys);
	if (harvested && keystore_delete(k->ks, r->address, res->was, &deleted, NULL) == CABLES_OK)
		log_info("keyd: %s: the harvested %s key %.16s is no longer pinned: deleted", r->address, r->format,
		    res->was);
}

/*
 * The pin of norm's key in r->format, before r (discovered) is stored:
 * see pins.h.  True when r may be stored and used.
 */
bool
keyd_pin_check(struct keyd *k, struct keyd_conf *c, const struct key_record *r, time_t now, struct held *held)
{
	struct pin_result res;

	if (pin_check(k->ks, &c->cfg->policy, r, now, &res, NULL) != CABLES_OK) {
		/* Fail closed: a key whose pin cannot be read is not used; the lookup waits. */
		log_warnx("keyd: %s: cannot read the pin of its %s key: not used now", r->address, r->format);
		if (held != NULL) {
			held->action = ACTION_TEMPFAIL;
			snprintf(held->why, sizeof(held->why), "the key store cannot be read (pins)");
		}
		return false;
	}
	switch (res.verdict) {
	case PIN_NEW:
	case PIN_SAME:
		return true;
	case PIN_RAISED:
		log_info("keyd: %s: the pinned %s key %.16s (%s) gives way to %.16s from a more trusted source (%s)",
		    r->address, r->format, res.was, res.was_source, r->fingerprint, r->source);
		forget_harvested(k, r, &res);
		return true;
	case PIN_CHANGED:
	case PIN_HELD:
		break;
	}
	log_warnx("keyd: %s: key change: %s key %.16s from %s, but %.16s (%s) is pinned: %s (On-KeyChange)",
	    r->address, r->format, r->fingerprint, r->source, res.was, res.was_source, fail_action_name(res.action));
	pthread_mutex_lock(&k->lock);
	k->key_changes++;
	pthread_mutex_unlock(&k->lock);
	keyd_key_change_alert(k, c, r, res.was, res.was_source, fail_action_name(res.action), now);
	if (res.verdict == PIN_CHANGED) {
		forget_harvested(k, r, &res);
		return true;
	}
	if (held != NULL) {
		held->action = (int)res.action;
		snprintf(held->why, sizeof(held->why),
		    "key change: %s key %.16s offered, %.16s pinned (On-KeyChange %s; cables-keyctl pins clear %s "
		    "accepts the new key)", r->format, r->fingerprint, res.was, fail_action_name(res.action), r->address);
	}
	return false;
}
