/* notice - a short automatic mail through sendmail(1); see notice.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "notice.h"
#include "util.h"

#define NOTICE_ARGS_MAX 32

/* The message as the command reads it on its standard input. */
static char *
notice_text(const char *to, const char *subject, const char *text)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return xasprintf("To: <%s>\nSubject: %s\nDate: %s\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s%s", to, subject, date, text,
	    text[0] != '\0' && text[strlen(text) - 1] == '\n' ? "" : "\n");
}

/* Write all of s to fd; false on an error (EPIPE: the command went away). */
static bool
write_all(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		s += n;
		len -= (size_t)n;
	}
	return true;
}

cables_status
notice_send(const char *command, const char *to, const char *subject, const char *text, struct cables_err *err)
{
	char *words, *argv[NOTICE_ARGS_MAX + 6], *save = NULL, *w, *msg;
	int fds[2], status;
	size_t argc = 0;
	pid_t pid;
	bool written;

	if (command == NULL || to == NULL || to[0] == '\0' || to[0] == '-' || strpbrk(to, " \t\r\n<>") != NULL)
		return cables_fail(err, CABLES_ERR_ARG, "notice: no command, or '%s' is not an address", to != NULL ? to : "");
	if (strpbrk(subject, "\r\n") != NULL)
		return cables_fail(err, CABLES_ERR_ARG, "notice: a subject with a line break");
	words = xstrdup(command);
	for (w = strtok_r(words, " \t", &save); w != NULL && argc < NOTICE_ARGS_MAX; w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	if (argc == 0 || w != NULL) {
		free(words);
		return cables_fail(err, CABLES_ERR_ARG, "notice: MailCommand '%s' is empty or has too many words", command);
	}
	argv[argc++] = (char *)"-f";
	argv[argc++] = (char *)"<>";
	argv[argc++] = (char *)"-i";
	argv[argc++] = (char *)"--";
	argv[argc++] = (char *)to;
	argv[argc] = NULL;
	if (pipe(fds) != 0) {
		free(words);
		return cables_fail(err, CABLES_ERR_IO, "notice: pipe: %s", strerror(errno));
	}
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		free(words);
		return cables_fail(err, CABLES_ERR_IO, "notice: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[0]);
	free(words);
	msg = notice_text(to, subject, text);
	written = write_all(fds[1], msg);
	close(fds[1]);
	free(msg);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cables_fail(err, CABLES_ERR_IO, "notice: %s %s (%d)", command,
		    WIFEXITED(status) ? "failed with exit status" : "was killed by signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (!written)
		return cables_fail(err, CABLES_ERR_IO, "notice: %s did not read the message", command);
	return CABLES_OK;
}
