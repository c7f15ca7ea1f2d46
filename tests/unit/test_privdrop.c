/* test_privdrop - sockets made as root and the directory that holds them (privdrop.h). */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "privdrop.h"
#include "util.h"

static char dir[64];

static int
setup(void **state)
{
	strlcpy_c(dir, "/tmp/privdrop.XXXXXX", sizeof(dir));
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_listen_makes_the_socket_with_its_mode(void **state)
{
	struct cables_err err;
	struct stat st;
	char *path = xasprintf("%s/s.sock", dir);
	int fd = privdrop_listen("TestSocket", path, (gid_t)-1, 0660, 4, &err);

	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	close(fd);
	free(path);
}

static void
test_listen_refuses_a_path_too_long(void **state)
{
	struct cables_err err;
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(privdrop_listen("TestSocket", path, (gid_t)-1, 0600, 4, &err), -1);
	assert_non_null(strstr(err.msg, "TestSocket /aaa"));
	assert_non_null(strstr(err.msg, "path too long"));
}

static void
test_socket_dir_accepts_a_private_directory(void **state)
{
	struct cables_err err;
	char *path = xasprintf("%s/s.sock", dir);

	chmod(dir, 0750);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_OK);
	free(path);
}

static void
test_socket_dir_refuses_a_writable_directory(void **state)
{
	struct cables_err err;
	char *path = xasprintf("%s/s.sock", dir);

	chmod(dir, 0770);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "writable by group or others"));
	chmod(dir, 0757);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	chmod(dir, 0750);
	free(path);
}

static void
test_socket_dir_refuses_a_link(void **state)
{
	struct cables_err err;
	char *link = xasprintf("%s/link", dir), *path = xasprintf("%s/link/s.sock", dir);

	assert_int_equal(symlink(dir, link), 0);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "not a directory"));
	unlink(link);
	free(link);
	free(path);
}

static void
test_socket_dir_refuses_a_missing_directory(void **state)
{
	struct cables_err err;
	char *path = xasprintf("%s/none/s.sock", dir);

	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "No such file"));
	free(path);
}

static void
test_socket_dir_refuses_a_writable_parent(void **state)
{
	struct cables_err err;
	char *open_ = xasprintf("%s/open", dir), *priv = xasprintf("%s/open/priv", dir);
	char *path = xasprintf("%s/open/priv/s.sock", dir);

	assert_int_equal(mkdir(open_, 0755), 0);
	assert_int_equal(mkdir(priv, 0750), 0);
	chmod(dir, 0755);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_OK);
	/* Others may replace priv (rmdir, then a directory or a link of theirs) between the check and bind(). */
	chmod(open_, 0777);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, open_));
	assert_non_null(strstr(err.msg, "writable by group or others (and not sticky)"));
	/* Sticky (as /tmp): others cannot remove or rename what is not theirs. */
	chmod(open_, 01777);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_OK);
	rmdir(priv);
	rmdir(open_);
	free(open_);
	free(priv);
	free(path);
}

/* GnuPGHome's rule: the state directory shared by the milter and keyd (root:cables 3770) and a home of its own. */
static void
test_private_dir_under_the_shared_state_directory(void **state)
{
	struct cables_err err;
	char *state_ = xasprintf("%s/state", dir), *home = xasprintf("%s/state/gnupg", dir);
	uid_t me = geteuid(), other = me + 4242;

	chmod(dir, 0755);
	assert_int_equal(mkdir(state_, 0755), 0);
	assert_int_equal(chmod(state_, 03770), 0);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, true, &err), CABLES_OK);	/* to be made */
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_OK);
	/* Not the milter's: another user (keyd's) could change gpg.conf or the keyrings. */
	assert_int_equal(chown(home, other, (gid_t)-1), 0);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "owned by another user"));
	assert_int_equal(chown(home, me, (gid_t)-1), 0);
	/* Writable by the group (keyd's user is in it). */
	chmod(home, 0770);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "writable by group or others"));
	chmod(home, 0700);
	/* The shared directory as it was (2770, not sticky): keyd's user could rename the home and put its own there. */
	chmod(state_, 02770);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "(and not sticky)"));
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, true, &err), CABLES_ERR_UNUSABLE);
	/* Owned by keyd's user: it could rename anything in it, sticky or not. */
	chmod(state_, 03770);
	assert_int_equal(chown(state_, other, (gid_t)-1), 0);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "owned by another user"));
	assert_int_equal(chown(state_, me, (gid_t)-1), 0);
	/* A link to a good home is not the home. */
	rmdir(home);
	free(home);
	home = xasprintf("%s/state/real", dir);
	assert_int_equal(mkdir(home, 0700), 0);
	free(home);
	home = xasprintf("%s/state/gnupg", dir);
	assert_int_equal(symlink("real", home), 0);
	assert_int_equal(privdrop_private_dir("GnuPGHome", home, me, false, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "not a directory (a symbolic link?)"));
	assert_int_equal(privdrop_private_dir("GnuPGHome", "gnupg", me, true, &err), CABLES_ERR_UNUSABLE);
	free(state_);
	free(home);
}

/* Where cables-keyctl may make a throw-away GnuPG home: nobody else may rename what it makes there. */
static void
test_temp_dir(void **state)
{
	struct cables_err err;
	char *t = xasprintf("%s/tmp", dir);

	chmod(dir, 0755);
	assert_int_equal(privdrop_temp_dir("TempDir", "/tmp", &err), CABLES_OK);
	assert_int_equal(mkdir(t, 0700), 0);
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_OK);
	chmod(t, 01777);	/* as /tmp */
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_OK);
	chmod(t, 0770);
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "(and not sticky)"));
	chmod(t, 0700);
	assert_int_equal(chown(t, geteuid() + 4242, (gid_t)-1), 0);	/* the milter's spool */
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "owned by another user"));
	assert_int_equal(privdrop_temp_dir("TempDir", "relative", &err), CABLES_ERR_UNUSABLE);
	rmdir(t);
	/* A link to /tmp is fine while it is ours; another user's could be pointed elsewhere after the check. */
	assert_int_equal(symlink("/tmp", t), 0);
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_OK);
	assert_int_equal(lchown(t, geteuid() + 4242, (gid_t)-1), 0);
	assert_int_equal(privdrop_temp_dir("TempDir", t, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "a symbolic link another user owns"));
	unlink(t);
	free(t);
}

static void
test_make_dir_by_descriptor(void **state)
{
	struct cables_err err;
	struct stat st;
	char *made = xasprintf("%s/made", dir), *path = xasprintf("%s/made/s.sock", dir);

	chmod(dir, 0755);
	assert_int_equal(privdrop_make_dir("TestSocket", path, 0750, (gid_t)-1, &err), CABLES_OK);
	assert_int_equal(lstat(made, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	/* There already: left to privdrop_socket_dir(). */
	assert_int_equal(privdrop_make_dir("TestSocket", path, 0700, (gid_t)-1, &err), CABLES_OK);
	assert_int_equal(lstat(made, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	rmdir(made);
	free(made);
	free(path);
}

static void
test_make_dir_refuses_under_a_writable_parent(void **state)
{
	struct cables_err err;
	struct stat st;
	char *open_ = xasprintf("%s/open", dir), *made = xasprintf("%s/open/made", dir);
	char *path = xasprintf("%s/open/made/s.sock", dir);

	/*
	 * Whoever may write open could, between mkdir and the change of group
	 * and mode, put a link to a file of root's in made's place: nothing is made.
	 */
	assert_int_equal(mkdir(open_, 0777), 0);
	chmod(open_, 0777);
	assert_int_equal(privdrop_make_dir("TestSocket", path, 0750, (gid_t)-1, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "writable by group or others (and not sticky)"));
	assert_int_not_equal(lstat(made, &st), 0);
	rmdir(open_);
	free(open_);
	free(made);
	free(path);
}

static void
test_make_dir_leaves_a_link_alone(void **state)
{
	struct cables_err err;
	struct stat st;
	char *target = xasprintf("%s/precious", dir), *link = xasprintf("%s/link", dir);
	char *path = xasprintf("%s/link/s.sock", dir);
	FILE *fp = fopen(target, "w");

	assert_non_null(fp);
	fclose(fp);
	chmod(target, 0600);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(privdrop_make_dir("TestSocket", path, 0750, (gid_t)-1, &err), CABLES_OK);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(privdrop_socket_dir("TestSocket", path, &err), CABLES_ERR_UNUSABLE);
	unlink(link);
	unlink(target);
	free(target);
	free(link);
	free(path);
}

static void
test_to_unknown_user(void **state)
{
	struct cables_err err;

	assert_int_equal(privdrop_to("KeyholderUser", "no-such-user-cables", &err), CABLES_ERR_NOTFOUND);
	assert_string_equal(err.msg, "KeyholderUser no-such-user-cables: no such user");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_makes_the_socket_with_its_mode),
		cmocka_unit_test(test_listen_refuses_a_path_too_long),
		cmocka_unit_test(test_socket_dir_accepts_a_private_directory),
		cmocka_unit_test(test_socket_dir_refuses_a_writable_directory),
		cmocka_unit_test(test_socket_dir_refuses_a_link),
		cmocka_unit_test(test_socket_dir_refuses_a_missing_directory),
		cmocka_unit_test(test_socket_dir_refuses_a_writable_parent),
		cmocka_unit_test(test_private_dir_under_the_shared_state_directory),
		cmocka_unit_test(test_temp_dir),
		cmocka_unit_test(test_make_dir_by_descriptor),
		cmocka_unit_test(test_make_dir_refuses_under_a_writable_parent),
		cmocka_unit_test(test_make_dir_leaves_a_link_alone),
		cmocka_unit_test(test_to_unknown_user),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
