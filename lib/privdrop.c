/* privdrop - sockets made as root, and the switch to the daemon's user; see privdrop.h. */
#include "autoconfig.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "privdrop.h"
#include "util.h"

int
privdrop_listen(const char *what, const char *path, gid_t gid, mode_t mode, int backlog, struct cables_err *err)
{
	struct sockaddr_un sun;
	char why[CABLES_ERR_MAX];
	mode_t old;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		cables_fail(err, CABLES_ERR_ARG, "%s %s: path too long (at most %zu bytes)", what, path,
		    sizeof(sun.sun_path) - 1);
		return -1;
	}
	strlcpy_c(sun.sun_path, path, sizeof(sun.sun_path));
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		cables_fail(err, CABLES_ERR_IO, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	/* Made with its mode (nothing is changed by path later, where a link could stand instead). */
	old = umask(~mode & 0777);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || listen(fd, backlog) != 0) {
		cables_fail(err, CABLES_ERR_IO, "%s %s: %s", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!socket_chgrp(path, gid, why, sizeof(why))) {
		cables_fail(err, CABLES_ERR_IO, "%s %s", what, why);
		close(fd);
		return -1;
	}
	return fd;
}

cables_status
privdrop_socket_dir(const char *what, const char *path, struct cables_err *err)
{
	char *copy = xstrdup(path), *dir = dirname(copy);
	const char *bad = NULL;
	struct stat st;

	if (lstat(dir, &st) != 0)
		bad = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		bad = "not a directory (a symbolic link?): refused";
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		bad = "owned by another user, who could put a socket of theirs in its place: refused";
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		bad = "writable by group or others, who could put a socket of theirs in its place: refused";
	if (bad != NULL)
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s %s: directory %s: %s", what, path, dir, bad);
	free(copy);
	return bad == NULL ? CABLES_OK : CABLES_ERR_UNUSABLE;
}

cables_status
privdrop_to(const char *what, const char *user, struct cables_err *err)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "%s %s: no such user", what, user);
	if (geteuid() == pw->pw_uid)
		return CABLES_OK;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return cables_fail(err, CABLES_ERR_IO, "%s %s: cannot switch: %s", what, user, strerror(errno));
	if (setuid(0) == 0)
		return cables_fail(err, CABLES_ERR_INTERNAL, "%s %s: root could be regained after the switch", what, user);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);	/* setuid() may have made it dumpable again */
	return CABLES_OK;
}
