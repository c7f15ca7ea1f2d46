#ifndef CABLES_KHWIPE_H
#define CABLES_KHWIPE_H

#include <stdbool.h>

/*
 * Make every block OpenSSL frees (or moves, in realloc) be overwritten
 * first (khwipe.c says why).  Call before OpenSSL allocates anything:
 * false when it already has.
 */
bool khwipe_install(void);

#endif
