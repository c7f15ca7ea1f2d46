/*
 * keyctl_migrate - cables-keyctl migrate: copy a SQLite key store (keys,
 * sealed private keys, epoch keys, pins, messages held for keys, domains
 * remembered as encrypting and the key change alerts told) into the store
 * KeyStore names, a PostgreSQL database shared by several MTAs.
 *
 * The target comes from the configuration, never from the command line,
 * so that a password in its URL is not shown by ps.  Sealed private keys
 * are copied sealed: the target works with the same KeyStoreKey.  A copy
 * is idempotent: rows the target holds already (same address, format and
 * fingerprint; a pin of the same address and format; a held message of the
 * same ID; a remembered domain; an alert) are left as they are.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyctl.h"
#include "util.h"

struct tally {
	size_t copied, kept;
};

static void
copy_keys(struct ctx *c, struct keystore *from, bool epoch, struct tally *t)
{
	struct key_list keys;
	struct cables_err err;
	bool added;

	if ((epoch ? keystore_epoch_list(from, NULL, true, &keys, &err) : keystore_list(from, true, &keys, &err))
	    != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < keys.count; i++) {
		if (keystore_restore(c->ks, &keys.items[i], &added, &err) != CABLES_OK)
			keyctl_die("copying the %s key %s of %s: %s", keys.items[i].format, keys.items[i].fingerprint,
			    keys.items[i].address, err.msg);
		if (added)
			t->copied++;
		else
			t->kept++;
	}
	key_list_release(&keys);
}

static void
copy_pins(struct ctx *c, struct keystore *from, struct tally *t)
{
	struct key_pin *pins, have;
	struct cables_err err;
	cables_status st;
	size_t n;

	if (keystore_pin_list(from, &pins, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		st = keystore_pin_get(c->ks, pins[i].address, pins[i].format, &have, &err);
		if (st == CABLES_OK) {
			key_pin_release(&have);
			t->kept++;
		} else if (st != CABLES_ERR_NOTFOUND || keystore_pin_set(c->ks, &pins[i], &err) != CABLES_OK) {
			keyctl_die("copying the pin of %s: %s", pins[i].address, err.msg);
		} else {
			t->copied++;
		}
		key_pin_release(&pins[i]);
	}
	free(pins);
}

/*
 * The messages waiting for keys.  Released ones stay behind: they are kept a
 * day only so that their resubmitted copies find them, and those copies pass
 * the milter of the MTA that still uses the old store or are held anew.
 */
static void
copy_held(struct ctx *c, struct keystore *from, struct tally *t)
{
	struct held_record *list, h;
	struct cables_err err;
	cables_status st;
	size_t n;

	if (keystore_held_list(from, false, 0, &list, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		st = keystore_held_get(c->ks, list[i].id, false, &h, &err);
		if (st == CABLES_OK) {
			held_record_release(&h);
			t->kept++;
			continue;
		}
		if (st != CABLES_ERR_NOTFOUND || keystore_held_get(from, list[i].id, true, &h, &err) != CABLES_OK)
			keyctl_die("copying the held message %s: %s", list[i].id, err.msg);
		st = keystore_held_add(c->ks, &h, &err);
		held_record_release(&h);
		if (st != CABLES_OK)
			keyctl_die("copying the held message %s: %s", list[i].id, err.msg);
		t->copied++;
	}
	held_list_release(list, n);
}

/* Downgrade protection: what was remembered (and when the administrator was told) goes along. */
static void
copy_downgrade(struct ctx *c, struct keystore *from, struct tally *domain_tally, struct tally *alert_tally)
{
	struct encrypting_domain *domains;
	struct key_change_alert *alerts;
	struct cables_err err;
	size_t n;
	bool added;

	if (keystore_encrypting_list(from, NULL, &domains, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		if (keystore_encrypting_restore(c->ks, &domains[i], &added, &err) != CABLES_OK)
			keyctl_die("copying the encrypting domain %s: %s", domains[i].domain, err.msg);
		if (added)
			domain_tally->copied++;
		else
			domain_tally->kept++;
	}
	free(domains);
	if (keystore_key_change_list(from, &alerts, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		if (keystore_key_change_tell(c->ks, alerts[i].address, alerts[i].format, alerts[i].old, alerts[i].new,
		    (time_t)alerts[i].told, &added, &err) != CABLES_OK)
			keyctl_die("copying the key change alert of %s: %s", alerts[i].address, err.msg);
		if (added)
			alert_tally->copied++;
		else
			alert_tally->kept++;
	}
	free(alerts);
}

/* Does the target hold anything at all? */
static bool
store_empty(struct keystore *ks)
{
	struct key_list keys, epochs;
	struct key_pin *pins;
	struct held_record *held;
	struct encrypting_domain *domains;
	struct key_change_alert *alerts;
	struct cables_err err;
	size_t n, nheld, ndomains, nalerts;
	bool empty;

	if (keystore_list(ks, false, &keys, &err) != CABLES_OK ||
	    keystore_epoch_list(ks, NULL, false, &epochs, &err) != CABLES_OK ||
	    keystore_pin_list(ks, &pins, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	if (keystore_held_list(ks, false, 0, &held, &nheld, &err) != CABLES_OK ||
	    keystore_encrypting_list(ks, NULL, &domains, &ndomains, &err) != CABLES_OK ||
	    keystore_key_change_list(ks, &alerts, &nalerts, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	empty = keys.count == 0 && epochs.count == 0 && n == 0 && nheld == 0 && ndomains == 0 && nalerts == 0;
	held_list_release(held, nheld);
	free(domains);
	free(alerts);
	key_list_release(&keys);
	key_list_release(&epochs);
	for (size_t i = 0; i < n; i++)
		key_pin_release(&pins[i]);
	free(pins);
	return empty;
}

int
keyctl_migrate(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' }, { "force", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 } };
	struct tally keys = { 0, 0 }, pins = { 0, 0 }, held = { 0, 0 }, domains = { 0, 0 },
	    alerts = { 0, 0 };
	const char *from_path = NULL;
	struct keystore *from;
	struct cables_err err;
	bool force = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f': from_path = optarg; break;
		case 'F': force = true; break;
		default: keyctl_usage(NULL);
		}
	}
	if (optind != argc)
		keyctl_usage("migrate takes no arguments but --from FILE [--force]");
	if (from_path == NULL)
		keyctl_usage("migrate needs --from FILE (the SQLite key store to copy)");
	if (from_path[0] != '/' || keystore_spec_is_url(from_path))
		keyctl_usage("--from: '%s' is not the absolute path of a SQLite key store", from_path);
	if (!keystore_spec_is_url(c->cfg->key_store))
		keyctl_die("KeyStore in %s is not a postgresql:// URL: nothing to migrate to", c->cfg->path);
	if (keystore_open(&from, from_path, false, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	open_store(c, true);
	if (!force && !store_empty(c->ks)) {
		keystore_close(from);
		keyctl_die("key store %s is not empty: give --force to add what it lacks", keystore_name(c->ks));
	}
	copy_keys(c, from, false, &keys);
	copy_keys(c, from, true, &keys);
	copy_pins(c, from, &pins);
	copy_held(c, from, &held);
	copy_downgrade(c, from, &domains, &alerts);
	keystore_close(from);
	printf("copied %zu key%s and %zu pin%s from %s into %s (%zu and %zu were there already)\n",
	    keys.copied, keys.copied == 1 ? "" : "s", pins.copied, pins.copied == 1 ? "" : "s", from_path,
	    keystore_name(c->ks), keys.kept, pins.kept);
	if (held.copied + held.kept > 0)
		printf("copied %zu held message%s (%zu were there already)\n", held.copied,
		    held.copied == 1 ? "" : "s", held.kept);
	if (domains.copied + domains.kept + alerts.copied + alerts.kept > 0)
		printf("copied %zu encrypting domain%s and %zu key change alert%s (%zu and %zu were there already)\n",
		    domains.copied, domains.copied == 1 ? "" : "s", alerts.copied, alerts.copied == 1 ? "" : "s",
		    domains.kept, alerts.kept);
	return 0;
}
