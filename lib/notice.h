/*
 * notice - short mails Cables sends itself (a held message's sender is
 * told it waits, that it left, that it came back; an administrator is told
 * of a downgrade or a key change), and the resubmission of a held message.
 *
 * Everything goes through the MailCommand program (a command line split
 * on blanks, "/usr/sbin/sendmail" by default) with its standard input as
 * the message; success is the program's exit status 0, i.e. the MTA has
 * queued the mail.  Notices and returns go from the null sender ("-f <>"),
 * so no notice is ever answered by another.  No shell is involved: the
 * addresses are arguments after "--", and an address that could be read
 * as something else (empty, a control character, a leading '-') is
 * refused with CABLES_ERR_ARG.  A program that has not finished within
 * NOTICE_DEADLINE seconds (a Postfix sendmail that cannot write its
 * maildrop retries forever) is killed with its process group and counts
 * as failed (CABLES_ERR_IO), so no caller waits for it for ever.  Nothing
 * here logs.
 */
#ifndef CABLES_NOTICE_H
#define CABLES_NOTICE_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Longest MailCommand, and most words in it. */
#define NOTICE_COMMAND_MAX 1024
#define NOTICE_COMMAND_WORDS 16

/* Seconds a MailCommand may take (writing its input and exiting). */
#define NOTICE_DEADLINE 60

/* Set that limit for this process (tests); seconds <= 0 restores NOTICE_DEADLINE. */
void notice_set_deadline(int seconds);

/*
 * Is a an envelope address MailCommand can be given: not empty, no blank
 * or control character, no leading '-', at most 320 characters?  What is
 * held must pass, or it could never be resubmitted or returned.
 */
bool notice_address_ok(const char *a);

/* Is command a usable MailCommand (an absolute program path, at most NOTICE_COMMAND_WORDS words)? */
cables_status notice_command_check(const char *command, struct cables_err *err);

/*
 * Send a text/plain UTF-8 mail to `to` from <> with Subject subject
 * (one line) and body text (LF line ends), Auto-Submitted:
 * auto-generated.
 */
cables_status notice_send(const char *command, const char *to, const char *subject, const char *text,
    struct cables_err *err);

/*
 * Hand a message back to the MTA as a new submission: the program gets
 * "-i -f SENDER -- RCPT..." (sender "" is sent as "<>") and data (a whole
 * message, CRLF or LF line ends) on its standard input, with the field
 * `first` ("Name: value", no line end; may be NULL) put before it.
 */
cables_status notice_resubmit(const char *command, const char *sender, const char *const *rcpts, size_t n,
    const char *first, const void *data, size_t len, struct cables_err *err);

/* One recipient of a returned message: its address and why it could not be served. */
struct notice_failed {
	const char *addr;
	const char *why;
};

/*
 * Return a message to its sender as a delivery status notification (RFC
 * 3464, multipart/report): an explanation, a per-recipient report with
 * each failed recipient, status 5.7.1 and why, and the returned message
 * (message/rfc822: its sender wrote it, and gets it back to send again).
 * reporting_host names the reporting MTA.
 */
cables_status notice_return(const char *command, const char *to, const char *reporting_host,
    const struct notice_failed *failed, size_t n, const char *explanation, const void *message, size_t len,
    struct cables_err *err);

#endif
