/*
 * keyctl_migrate - cables-keyctl migrate: copy a SQLite key store (keys,
 * sealed private keys, epoch keys, pins) into the store KeyStore names,
 * a PostgreSQL database shared by several MTAs.
 *
 * The target comes from the configuration, never from the command line,
 * so that a password in its URL is not shown by ps.  Sealed private keys
 * are copied sealed: the target works with the same KeyStoreKey.  A copy
 * is idempotent: rows the target holds already (same address, format and
 * fingerprint; a pin of the same address and format) are left as they are.
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

/* Does the target hold anything at all? */
static bool
store_empty(struct keystore *ks)
{
	struct key_list keys, epochs;
	struct key_pin *pins;
	struct cables_err err;
	size_t n;
	bool empty;

	if (keystore_list(ks, false, &keys, &err) != CABLES_OK ||
	    keystore_epoch_list(ks, NULL, false, &epochs, &err) != CABLES_OK ||
	    keystore_pin_list(ks, &pins, &n, &err) != CABLES_OK)
		keyctl_die("%s", err.msg);
	empty = keys.count == 0 && epochs.count == 0 && n == 0;
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
	struct tally keys = { 0, 0 }, pins = { 0, 0 };
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
	keystore_close(from);
	printf("copied %zu key%s and %zu pin%s from %s into %s (%zu and %zu were there already)\n",
	    keys.copied, keys.copied == 1 ? "" : "s", pins.copied, pins.copied == 1 ? "" : "s", from_path,
	    keystore_name(c->ks), keys.kept, pins.kept);
	return 0;
}
