/*
 * senderlogins - who may sign as a sender address: the SenderLogins map
 * (in the style of Postfix's smtpd_sender_login_maps) and the rule that
 * uses it.
 *
 * The file holds "ADDRESS LOGIN[,LOGIN...]" lines ('#' comments, blank
 * lines); ADDRESS is a full address or "@domain" (every address of the
 * domain).  Addresses are compared in their normalised form (addr.h),
 * logins without regard to case, as Postfix compares SASL logins.
 *
 * A map is owned by its creator and freed with sender_logins_free (NULL is
 * fine).  Loading returns a status and "file:line: detail" in err.
 */
#ifndef CABLES_SENDERLOGINS_H
#define CABLES_SENDERLOGINS_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "status.h"

struct sender_logins;

/* Read path into *out. */
cables_status sender_logins_load(struct sender_logins **out, const char *path, const struct addr_opts *o,
    struct cables_err *err);

/* Does the map let login send as addr (normalised)? */
bool sender_logins_allows(const struct sender_logins *map, const char *addr, const char *login);

void sender_logins_free(struct sender_logins *map);

/*
 * May a submitter authenticated as login (NULL or "": not authenticated)
 * have mail from addr (normalised) signed?  Yes when the login equals the
 * address, when the map allows it, or, unauthenticated, when
 * sign_unauthenticated.  When not, why says so for the log line.
 */
bool sender_entitled(const struct sender_logins *map, bool sign_unauthenticated, const char *addr,
    const char *login, char *why, size_t len);

#endif
