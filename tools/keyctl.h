/* keyctl - shared by the cables-keyctl command modules: fatal errors and usage. */
#ifndef CABLES_KEYCTL_H
#define CABLES_KEYCTL_H

#include "config.h"

/* One line "cables-keyctl: ...", exit 1. */
void keyctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The message (if any) and the usage text, exit 2. */
void keyctl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int keyctl_policy(struct config *cfg, int argc, char **argv);

#endif
