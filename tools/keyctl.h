/* keyctl - shared by the cables-keyctl command modules: fatal errors and usage. */
#ifndef CABLES_KEYCTL_H
#define CABLES_KEYCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "keystore.h"

struct ctx {
	struct config *cfg;
	struct keystore *ks;
	time_t now;
	bool offline;		/* -o: write the store directly, not through cables-keyd */
	bool force;		/* import --force: store a key that is not usable now */
};

void open_store(struct ctx *c, bool create);
/* addr normalised, or die naming it. */
char *normalized(const struct ctx *c, const char *addr);

/*
 * Writes (keyctl_keyd.c): through cables-keyd when KeydSocket is set and
 * not -o, for public keys; a record with a private half is stored directly,
 * and so is everything while keyd is not running (the keyd_ functions then
 * return false and the caller uses the store).  Failures die with the
 * reason.
 */
bool keyctl_via_keyd(const struct ctx *c);
void keyctl_put(struct ctx *c, const struct key_record *r);
bool keyctl_keyd_delete(struct ctx *c, const char *addr, const char *fpr, size_t *deleted);
bool keyctl_keyd_list(struct ctx *c, struct key_list *out);

/* OpenPGP keys (keyctl_pgp.c). */
void keyctl_pgp_generate(struct ctx *c, const char *addr, const char *algo, unsigned long days);
int keyctl_pgp_import(struct ctx *c, const char *path, const uint8_t *data, size_t len, const char *want, bool force);
/* Write the record's key (armored; with its secret when private); false if private and it has none. */
bool keyctl_pgp_export(struct ctx *c, const struct key_record *r, bool private, int fd);
void keyctl_pgp_show(struct ctx *c, const struct key_record *r);

/* One line "cables-keyctl: ...", exit 1. */
void keyctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The message (if any) and the usage text, exit 2. */
void keyctl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int keyctl_policy(struct config *cfg, int argc, char **argv);
int keyctl_publish(struct ctx *c, int argc, char **argv);
int keyctl_lookup(struct ctx *c, int argc, char **argv);
int keyctl_exchange_key(struct ctx *c, int argc, char **argv);
int keyctl_pins(struct ctx *c, int argc, char **argv);
int keyctl_encrypting(struct ctx *c, int argc, char **argv);
int keyctl_stats(struct ctx *c, int argc, char **argv);
int keyctl_migrate(struct ctx *c, int argc, char **argv);
int keyctl_held(struct ctx *c, int argc, char **argv);

#endif
