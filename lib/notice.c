/* notice - mails Cables sends and resubmissions; see notice.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "notice.h"
#include "util.h"

extern char **environ;

static int deadline_seconds = NOTICE_DEADLINE;

void
notice_set_deadline(int seconds)
{
	deadline_seconds = seconds > 0 ? seconds : NOTICE_DEADLINE;
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC seconds), 0 when it has passed. */
static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* MailCommand split on blanks into words (pointing into copy); their count, or -1. */
static int
command_words(const char *command, char *copy, size_t copy_len, char **words)
{
	int n = 0;

	if (command == NULL || strlen(command) >= copy_len)
		return -1;
	strlcpy_c(copy, command, copy_len);
	for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w != NULL; w = strtok_r(NULL, " \t", &save)) {
		if (n == NOTICE_COMMAND_WORDS)
			return -1;
		words[n++] = w;
	}
	return n > 0 && words[0][0] == '/' ? n : -1;
}

cables_status
notice_command_check(const char *command, struct cables_err *err)
{
	char copy[NOTICE_COMMAND_MAX];
	char *words[NOTICE_COMMAND_WORDS];

	if (command_words(command, copy, sizeof(copy), words) < 0)
		return cables_fail(err, CABLES_ERR_ARG, "'%s' is not a command line: an absolute program path and at "
		    "most %d words", command != NULL ? command : "", NOTICE_COMMAND_WORDS - 1);
	return CABLES_OK;
}

bool
notice_address_ok(const char *a)
{
	if (a == NULL || a[0] == '\0' || a[0] == '-' || strlen(a) > 320)
		return false;
	for (const unsigned char *p = (const unsigned char *)a; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/*
 * Write all of p to fd (a non-blocking socket: no SIGPIPE when the program
 * died) before deadline; a program that stops reading must not stop us.
 */
static bool
send_all(int fd, const void *p, size_t n, const struct timespec *deadline)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { fd, POLLOUT, 0 };
			int ms = ms_left(deadline);

			if (ms == 0 || (poll(&pfd, 1, ms) < 0 && errno != EINTR))
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * Reap pid by deadline; past it, kill its process group (a sendmail that
 * retries forever, and whatever it started) and reap it.  true when it
 * ended on its own, with its status in *status.
 */
static bool
reap_by(pid_t pid, const struct timespec *deadline, int *status)
{
	const struct timespec pause = { 0, 20 * 1000 * 1000 };
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
		if (ms_left(deadline) == 0) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return false;
		}
		nanosleep(&pause, NULL);
	}
	return r == pid;
}

/*
 * Run MailCommand with args after its own words, head then body on its
 * standard input; CABLES_OK when it exits 0 within the deadline.
 */
static cables_status
run_command(const char *command, const char *const *args, size_t nargs, const struct buf *head, const void *body,
    size_t len, struct cables_err *err)
{
	char copy[NOTICE_COMMAND_MAX];
	char *words[NOTICE_COMMAND_WORDS];
	char **argv;
	int n, sv[2], status, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	struct timespec deadline;
	pid_t pid;
	bool wrote;

	if ((n = command_words(command, copy, sizeof(copy), words)) < 0)
		return notice_command_check(command, err);
	argv = xcalloc((size_t)n + nargs + 1, sizeof(*argv));
	for (int i = 0; i < n; i++)
		argv[i] = words[i];
	for (size_t i = 0; i < nargs; i++)
		argv[n + i] = (char *)(uintptr_t)args[i];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		free(argv);
		return cables_fail(err, CABLES_ERR_IO, "MailCommand: socketpair: %s", strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	/* Nothing of the caller's (keyd's sockets, the key store) goes to the program. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* A group of its own, so that the deadline ends whatever it started too. */
	posix_spawnattr_init(&attr);
	/*
	 * And no blocked signal of ours: the milter's threads block SIGTERM
	 * and friends for libmilter's signal thread; sendmail(1) must not
	 * inherit that.
	 */
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&attr, 0);
	rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		return cables_fail(err, CABLES_ERR_IO, "MailCommand %s: %s", words[0], strerror(rc));
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += deadline_seconds;
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	wrote = send_all(sv[0], head->data, head->len, &deadline) && send_all(sv[0], body, len, &deadline);
	close(sv[0]);
	if (!reap_by(pid, &deadline, &status))
		return cables_fail(err, CABLES_ERR_IO, "MailCommand %s did not finish within %d seconds: killed",
		    words[0], deadline_seconds);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cables_fail(err, CABLES_ERR_IO, "MailCommand %s %s %d", words[0],
		    WIFEXITED(status) ? "exited with status" : "was killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (!wrote)
		return cables_fail(err, CABLES_ERR_IO, "MailCommand %s did not read the whole message", words[0]);
	return CABLES_OK;
}

/* Header fields every mail of ours has. */
static void
common_fields(struct buf *b, const char *to, const char *subject)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON>\nTo: <%s>\nSubject: ", to);
	/* One line: control characters in a subject made from addresses go. */
	for (const char *p = subject; *p != '\0'; p++)
		if ((unsigned char)*p >= ' ' && *p != 0x7f)
			buf_append(b, p, 1);
	buf_printf(b, "\nDate: %s\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n", date);
}

cables_status
notice_send(const char *command, const char *to, const char *subject, const char *text, struct cables_err *err)
{
	const char *args[] = { "-i", "-f", "<>", "--", to };
	struct buf b;
	cables_status st;

	if (!notice_address_ok(to))
		return cables_fail(err, CABLES_ERR_ARG, "notice: '%s' is not an address to send to", to != NULL ? to : "");
	buf_init(&b);
	common_fields(&b, to, subject);
	buf_appends(&b, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
	st = run_command(command, args, 5, &b, text, strlen(text), err);
	buf_release(&b);
	return st;
}

cables_status
notice_resubmit(const char *command, const char *sender, const char *const *rcpts, size_t n, const char *first,
    const void *data, size_t len, struct cables_err *err)
{
	const char **args = xcalloc(n + 5, sizeof(*args));
	struct buf b;
	cables_status st;

	if (sender[0] != '\0' && !notice_address_ok(sender)) {
		free(args);
		return cables_fail(err, CABLES_ERR_ARG, "resubmission: sender '%s' is not an address", sender);
	}
	args[0] = "-i";
	args[1] = "-f";
	args[2] = sender[0] != '\0' ? sender : "<>";
	args[3] = "--";
	for (size_t i = 0; i < n; i++) {
		if (!notice_address_ok(rcpts[i])) {
			free(args);
			return cables_fail(err, CABLES_ERR_ARG, "resubmission: recipient '%s' is not an address", rcpts[i]);
		}
		args[4 + i] = rcpts[i];
	}
	buf_init(&b);
	if (first != NULL)
		buf_printf(&b, "%s\r\n", first);
	st = run_command(command, args, n + 4, &b, data, len, err);
	buf_release(&b);
	free(args);
	return st;
}

cables_status
notice_return(const char *command, const char *to, const char *reporting_host, const struct notice_failed *failed,
    size_t n, const char *explanation, const void *message, size_t len, struct cables_err *err)
{
	const char *args[] = { "-i", "-f", "<>", "--", to };
	char boundary[64], date[64];
	time_t now = time(NULL);
	struct tm tm;
	struct buf b;
	cables_status st;

	if (!notice_address_ok(to))
		return cables_fail(err, CABLES_ERR_ARG, "return: '%s' is not an address to send to", to != NULL ? to : "");
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(boundary, sizeof(boundary), "cables-dsn-%lld-%ld", (long long)now, (long)getpid());
	buf_init(&b);
	common_fields(&b, to, "Undelivered Mail Returned to Sender (no encryption key)");
	buf_printf(&b, "Content-Type: multipart/report; report-type=delivery-status;\n boundary=\"%s\"\n\n", boundary);
	buf_printf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n",
	    boundary, explanation);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "  <%s>: %s\n", failed[i].addr, failed[i].why);
	buf_printf(&b, "\n--%s\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; %s\nArrival-Date: %s\n",
	    boundary, reporting_host, date);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&b, "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: 5.7.1\nDiagnostic-Code: X-Cables; ",
		    failed[i].addr);
		for (const char *p = failed[i].why; *p != '\0'; p++)
			if ((unsigned char)*p >= ' ' && *p != 0x7f)
				buf_append(&b, p, 1);
		buf_appends(&b, "\n");
	}
	buf_printf(&b, "\n--%s\nContent-Type: message/rfc822\n\n", boundary);
	buf_append(&b, message, len);
	buf_printf(&b, "\n--%s--\n", boundary);
	st = run_command(command, args, 5, &b, "", 0, err);
	buf_release(&b);
	return st;
}
