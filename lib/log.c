/* log - logging for the programs; see log.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *log_ident = "cables";
static int log_fd = -1;		/* LogFile, or -1 */
static bool log_stderr = true;	/* until log_open() says otherwise */
static bool log_debug_on;
/* Our pid for the line prefix, looked up once (0: not yet), not once a line; a forked child looks again. */
static _Atomic long log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void
log_pid_forget(void)
{
	atomic_store(&log_pid, 0);
}

static void
log_pid_watch_forks(void)
{
	(void)pthread_atfork(NULL, NULL, log_pid_forget);
}

static long
log_getpid(void)
{
	long pid = atomic_load(&log_pid);

	if (pid == 0) {
		pthread_once(&log_pid_once, log_pid_watch_forks);
		pid = (long)getpid();
		atomic_store(&log_pid, pid);
	}
	return pid;
}

static int
facility_value(const char *name)
{
	static const struct { const char *name; int value; } map[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (name != NULL && str_ieq(name, map[i].name))
			return map[i].value;
	return LOG_MAIL;
}

cables_status
log_open(const char *ident, const char *facility, const char *file, bool foreground,
    struct cables_err *err)
{
	log_ident = ident;
	if (file != NULL) {
		char why[CABLES_ERR_MAX - 32];

		/* Opened before privileges are dropped: no symbolic link, no file another user controls. */
		if ((log_fd = file_open_owned(file, false, why, sizeof(why))) < 0) {
			log_stderr = true;
			return cables_fail(err, CABLES_ERR_IO, "LogFile %s", why);
		}
		log_stderr = false;
		return CABLES_OK;
	}
	log_stderr = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, facility_value(facility));
	return CABLES_OK;
}

void
log_close(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	if (!log_stderr)
		closelog();
}

void
log_set_debug(bool on)
{
	log_debug_on = on;
}

static void log_vwrite(int prio, const char *fmt, va_list ap, const char *suffix)
	__attribute__((format(printf, 2, 0)));

static void
log_vwrite(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char msg[2048], line[2300];
	struct tm tm;
	time_t now;
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_fd < 0 && !log_stderr) {
		syslog(prio, "%s%s", msg, suffix);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d %s[%ld]: %s%s\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, log_ident, log_getpid(), msg, suffix);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
}

#define LOG_FN(fn, prio)					\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vwrite(prio, fmt, ap, "");				\
	va_end(ap);						\
}

LOG_FN(log_info, LOG_INFO)
LOG_FN(log_warnx, LOG_WARNING)

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, "");
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	char suffix[160];
	int saved = errno;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(saved));
	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, suffix);
	va_end(ap);
	errno = saved;
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap, "");
	va_end(ap);
	exit(1);
}
