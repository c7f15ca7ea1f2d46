/*
 * privdrop - what cables-keyd and cables-keyholder do as root before they
 * give root up: make their listening UNIX sockets for the right group with
 * the right mode, and switch to their configured user for good.
 *
 * Library rules apply (status.h): nothing here logs or exits; the daemons
 * turn a failure into their own fatal message.  what is the setting's name
 * ("KeydSocket", "KeyholderUser"), put first in every message.
 */
#ifndef CABLES_PRIVDROP_H
#define CABLES_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "status.h"

/*
 * A listening UNIX stream socket at path (an old one there is removed),
 * made with mode (umask around bind(), never chmod by path) and given the
 * group gid ((gid_t)-1: leave it) without following a link put in its place
 * (socket_chgrp).  The fd (close-on-exec), or -1 with err set.
 */
int privdrop_listen(const char *what, const char *path, gid_t gid, mode_t mode, int backlog, struct cables_err *err);

/*
 * The directory that will hold the socket at path may not let anyone but
 * its owner put another socket in its place: it must be a directory (not a
 * link to one), owned by root or the effective user, and not writable by
 * group or others; and every directory above it (as written and as
 * resolved) owned by root or the effective user and writable by no one
 * else unless sticky, so that no one can put another directory or a link
 * in its place between this check and bind().  CABLES_ERR_UNUSABLE with
 * err saying which directory breaks which rule.
 */
cables_status privdrop_socket_dir(const char *what, const char *path, struct cables_err *err);

/*
 * Make the directory that will hold the socket at path when it is missing:
 * mode, group gid ((gid_t)-1: leave it), set through a descriptor of the
 * directory just made (O_NOFOLLOW), never by path, where a link put in its
 * place would have root change another file; refused (CABLES_ERR_UNUSABLE)
 * before anything is made when a directory above it breaks
 * privdrop_socket_dir()'s rule.  CABLES_OK when it was there already.
 */
cables_status privdrop_make_dir(const char *what, const char *path, mode_t mode, gid_t gid, struct cables_err *err);

/*
 * A directory that one user alone may change (the milter's GnuPGHome, whose
 * gpg.conf and keyrings gpg trusts): path must be absolute, a directory (not
 * a link to one), owned by owner and writable by no one else; every
 * directory above it owned by root or owner and writable by no one else
 * unless sticky (privdrop_socket_dir()'s rule), so that no one else can
 * put a directory or a link of theirs in its place.  missing_ok: a path
 * that does not exist passes when the directories above it do (it is
 * about to be made).  CABLES_ERR_UNUSABLE with err saying which directory
 * breaks which rule.  It may run as root for owner (before the switch).
 */
cables_status privdrop_private_dir(const char *what, const char *path, uid_t owner, bool missing_ok,
    struct cables_err *err);

/*
 * A directory in which what the effective user makes (a mkdtemp() home
 * that will hold an unsealed secret for a moment) stays its own: path and
 * every directory above it owned by root or the effective user and
 * writable by no one else unless sticky (as /tmp), so no one else can
 * rename what is made there, or the directory itself, and put a link to a
 * directory of theirs in its place.  CABLES_ERR_UNUSABLE with err saying
 * which directory breaks which rule.
 */
cables_status privdrop_temp_dir(const char *what, const char *path, struct cables_err *err);

/*
 * Become user for good: supplementary groups, group, then user (no way
 * back), and not dumpable again afterwards (setuid() may have made the
 * process dumpable).  Nothing to do when already running as user.
 */
cables_status privdrop_to(const char *what, const char *user, struct cables_err *err);

#endif
