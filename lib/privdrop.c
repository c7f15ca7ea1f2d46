/* privdrop - sockets made as root, and the switch to the daemon's user; see privdrop.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
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

/*
 * May the directory whose lstat() is st hold what only its owner should
 * change?  final: the socket's own directory (no one else may write it);
 * else an ancestor, which others may write only when it is sticky (they
 * cannot then remove or rename what is not theirs).  NULL, or why not.
 */
static const char *
dir_rule(const struct stat *st, bool final, uid_t owner)
{
	if (!S_ISDIR(st->st_mode))
		return "not a directory (a symbolic link?): refused";
	if (st->st_uid != 0 && st->st_uid != owner)
		return "owned by another user, who could put a socket of theirs in its place: refused";
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 && (final || (st->st_mode & S_ISVTX) == 0))
		return final ? "writable by group or others, who could put a socket of theirs in its place: refused" :
		    "writable by group or others (and not sticky), who could put a directory or a link of theirs "
		    "in its place: refused";
	return NULL;
}

/*
 * Every directory above dir, as written (an absolute dir: a link among them
 * is checked where it stands) and as resolved (realpath): dir_rule() for an
 * ancestor, owner being who else may own one (besides root).  NULL, or why
 * not, with the directory in where.
 */
static const char *
ancestors_bad(const char *dir, char *where, size_t wlen, uid_t owner)
{
	char *real = realpath(dir, NULL);
	const char *forms[2] = { dir[0] == '/' ? dir : NULL, real }, *bad = NULL;
	struct stat st;

	for (size_t f = 0; f < 2 && bad == NULL; f++) {
		char *p;

		if (forms[f] == NULL)
			continue;
		p = xstrdup(forms[f]);
		for (char *slash = strrchr(p, '/'); slash != NULL && bad == NULL; slash = strrchr(p, '/')) {
			*slash = '\0';
			strlcpy_c(where, slash == p ? "/" : p, wlen);
			if (lstat(where, &st) != 0)
				bad = strerror(errno);
			else if (!S_ISLNK(st.st_mode))
				bad = dir_rule(&st, false, owner);
			if (slash == p)
				break;
		}
		free(p);
	}
	free(real);
	return bad;
}

cables_status
privdrop_make_dir(const char *what, const char *path, mode_t mode, gid_t gid, struct cables_err *err)
{
	char *copy = xstrdup(path), *dir = dirname(copy), where[PATH_MAX];
	const char *bad;
	struct stat st;
	int fd;

	/* Above it, no one but root may put a directory or a link of theirs in its place (between mkdir and fchown). */
	if ((bad = ancestors_bad(dir, where, sizeof(where), geteuid())) != NULL) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s %s: directory %s: %s", what, path, where, bad);
		free(copy);
		return CABLES_ERR_UNUSABLE;
	}
	if (mkdir(dir, mode & 0777) != 0) {
		free(copy);
		return CABLES_OK;	/* there already (privdrop_socket_dir() checks it), or cannot be made (it says so) */
	}
	/* The one just made, never one a link points to: by descriptor. */
	errno = 0;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 ||
	    st.st_uid != geteuid() || (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0) ||
	    fchmod(fd, mode & 0777) != 0) {
		cables_fail(err, CABLES_ERR_IO, "%s %s: directory %s: %s", what, path, dir,
		    errno != 0 ? strerror(errno) : "not the one just made");
		if (fd >= 0)
			close(fd);
		free(copy);
		return CABLES_ERR_IO;
	}
	close(fd);
	free(copy);
	return CABLES_OK;
}

cables_status
privdrop_socket_dir(const char *what, const char *path, struct cables_err *err)
{
	char *copy = xstrdup(path), *dir = dirname(copy), where[PATH_MAX];
	const char *bad = NULL;
	struct stat st;

	strlcpy_c(where, dir, sizeof(where));
	if (lstat(dir, &st) != 0)
		bad = strerror(errno);
	else if ((bad = dir_rule(&st, true, geteuid())) == NULL)
		bad = ancestors_bad(dir, where, sizeof(where), geteuid());
	if (bad != NULL)
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s %s: directory %s: %s", what, path, where, bad);
	free(copy);
	return bad == NULL ? CABLES_OK : CABLES_ERR_UNUSABLE;
}

cables_status
privdrop_private_dir(const char *what, const char *path, uid_t owner, bool missing_ok, struct cables_err *err)
{
	char where[PATH_MAX];
	const char *bad = NULL;
	struct stat st;

	strlcpy_c(where, path, sizeof(where));
	if (path[0] != '/')
		bad = "not an absolute path: refused";
	else if (lstat(path, &st) != 0)
		bad = errno == ENOENT && missing_ok ? NULL : strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		bad = "not a directory (a symbolic link?): refused";
	else if (st.st_uid != owner) {
		snprintf(where, sizeof(where), "%s (uid %u, not uid %u)", path, (unsigned)st.st_uid, (unsigned)owner);
		bad = "owned by another user, who could change what is in it: refused";
	} else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		bad = "writable by group or others, who could change what is in it: refused";
	if (bad == NULL && strcmp(path, "/") != 0)
		bad = ancestors_bad(path, where, sizeof(where), owner);
	if (bad != NULL)
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s %s: directory %s: %s", what, path, where, bad);
	return bad == NULL ? CABLES_OK : CABLES_ERR_UNUSABLE;
}

cables_status
privdrop_temp_dir(const char *what, const char *path, struct cables_err *err)
{
	char where[PATH_MAX];
	const char *bad = NULL;
	struct stat st;

	strlcpy_c(where, path, sizeof(where));
	if (path[0] != '/')
		bad = "not an absolute path: refused";
	else if (lstat(path, &st) != 0)
		bad = strerror(errno);
	else if (S_ISLNK(st.st_mode) && st.st_uid != 0 && st.st_uid != geteuid())
		bad = "a symbolic link another user owns, who could point it elsewhere: refused";
	else if (stat(path, &st) != 0)
		bad = strerror(errno);
	else if ((bad = dir_rule(&st, false, geteuid())) == NULL && strcmp(path, "/") != 0)
		bad = ancestors_bad(path, where, sizeof(where), geteuid());
	if (bad == NULL) {
		/* As resolved, too (path may be a link, checked where it stands above). */
		char *real = realpath(path, NULL);

		if (real == NULL || lstat(real, &st) != 0)
			bad = "cannot be resolved: refused";
		else
			bad = dir_rule(&st, false, geteuid());
		free(real);
	}
	if (bad != NULL)
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s %s: directory %s: %s", what, path, where, bad);
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
