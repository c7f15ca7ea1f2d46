/*
 * notice - a short automatic mail (to an administrator, to a sender),
 * handed to the MTA's sendmail(1) command: envelope sender <> ("-f <>",
 * so that nothing bounces back to us), "-i -- TO", text/plain in UTF-8
 * with Auto-Submitted: auto-generated (RFC 3834).
 *
 * command is a command line split on blanks (config MailCommand, e.g.
 * "/usr/sbin/sendmail" or "/usr/sbin/sendmail -C /etc/postfix-out"); it
 * runs without a shell.  to must be an address (no blanks, no line
 * breaks); subject and text are the caller's, a subject with a line break
 * is refused.  Errors: CABLES_ERR_ARG for a bad argument,
 * CABLES_ERR_IO when the command cannot be run or does not exit 0, both
 * with the reason.  Nothing is logged; the call waits for the command.
 * The caller ignores SIGPIPE (a command that exits early is an error).
 */
#ifndef CABLES_NOTICE_H
#define CABLES_NOTICE_H

#include "status.h"

cables_status notice_send(const char *command, const char *to, const char *subject, const char *text,
    struct cables_err *err);

#endif
