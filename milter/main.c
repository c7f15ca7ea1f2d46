/* cables-milter - the program: options, configuration, socket, daemon. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "config.h"
#include "keystore.h"
#include "log.h"
#include "metrics_server.h"
#include "milter.h"
#include "release.h"
#include "mime.h"
#include "pgp.h"
#include "privdrop.h"
#include "smime.h"
#include "util.h"

static void
usage(void)
{
	fprintf(stderr, "usage: cables-milter [-fnd] [-c config-file]\n"
	    "  -c FILE  configuration file (default " CABLES_DEFAULT_CONFIG ")\n"
	    "  -f       stay in the foreground, log to stderr unless LogFile is set\n"
	    "  -n       check the configuration and exit\n"
	    "  -d       log debugging detail\n");
	exit(2);
}

/* Core dumps of a process that holds keys would put them on disk. */
static void
no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/*
 * libmilter does not expose its listening socket; find it and set
 * TCP_NODELAY so that small milter replies are not held back by Nagle's
 * algorithm against delayed ACKs (accepted sockets inherit the option).
 */
static int
set_nodelay_on_listeners(void)
{
	int one = 1, done = 0;

	for (int fd = 0; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int listening = 0;
		socklen_t optlen = sizeof(listening);

		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			log_warn("setting TCP_NODELAY on the milter socket");
		else
			done++;
	}
	return done;
}

/* The path of a unix: or local: socket specification, or NULL. */
static const char *
socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

/*
 * Only the MTA should be able to connect: SocketGroup on the socket
 * libmilter made (SocketMode was its mode when made: see main()), never
 * following a link put in its place.
 */
static int
secure_socket(const struct config *cfg)
{
	const char *path = socket_path(cfg->socket);
	struct group *gr = NULL;
	char why[CABLES_ERR_MAX];

	if (path == NULL)
		return 0;
	if (cfg->socket_group != NULL && (gr = getgrnam(cfg->socket_group)) == NULL) {
		fprintf(stderr, "cables-milter: SocketGroup %s: no such group\n", cfg->socket_group);
		return -1;
	}
	if (!socket_chgrp(path, gr != NULL ? gr->gr_gid : (gid_t)-1, why, sizeof(why))) {
		fprintf(stderr, "cables-milter: Socket %s\n", why);
		return -1;
	}
	return 0;
}

/*
 * GnuPGHome: short enough, and the milter's own: a directory that User (or,
 * without User, the user it runs as) owns and no one else may write, under
 * directories no one else can swap (privdrop_private_dir()), or one that can
 * be made there.  gpg trusts what is in it (gpg.conf, keyrings): a home that
 * keyd's user could replace would let it run code as the milter.
 */
static int
check_gnupg_home(const struct config *cfg)
{
	struct passwd *pw = cfg->user != NULL ? getpwnam(cfg->user) : NULL;
	struct cables_err err;

	if (strlen(cfg->gnupg_home) > 80) {
		fprintf(stderr, "cables-milter: %s: GnuPGHome %s: longer than 80 characters\n", cfg->path,
		    cfg->gnupg_home);
		return -1;
	}
	if (cfg->user != NULL && pw == NULL)
		return 0;	/* check_runtime() says User is unknown */
	if (privdrop_private_dir("GnuPGHome", cfg->gnupg_home, pw != NULL ? pw->pw_uid : geteuid(), true, &err) !=
	    CABLES_OK) {
		fprintf(stderr, "cables-milter: %s: %s\n", cfg->path, err.msg);
		return -1;
	}
	return 0;
}

static int
check_runtime(const struct config *cfg)
{
	struct keystore *ks;
	struct cables_err err;
	struct stat sb;

	if (cfg->socket_group != NULL && getgrnam(cfg->socket_group) == NULL) {
		fprintf(stderr, "cables-milter: %s: SocketGroup %s: no such group\n", cfg->path, cfg->socket_group);
		return -1;
	}
	if (stat(cfg->temp_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(cfg->temp_dir, W_OK) != 0) {
		fprintf(stderr, "cables-milter: %s: TempDir %s is not a writable directory\n",
		    cfg->path, cfg->temp_dir);
		return -1;
	}
	if (keystore_open(&ks, cfg->key_store, true, &err) != CABLES_OK) {
		fprintf(stderr, "cables-milter: %s\n", err.msg);
		return -1;
	}
	keystore_close(ks);
	if (check_gnupg_home(cfg) != 0)
		return -1;
	if (cfg->user != NULL && getpwnam(cfg->user) == NULL) {
		fprintf(stderr, "cables-milter: %s: User %s: no such user\n", cfg->path, cfg->user);
		return -1;
	}
	if (cfg->trust_anchors != NULL) {
		X509_STORE *anchors = smime_anchors_load(cfg->trust_anchors, &err);

		if (anchors == NULL) {
			fprintf(stderr, "cables-milter: %s: %s\n", cfg->path, err.msg);
			return -1;
		}
		X509_STORE_free(anchors);
	}
	return 0;
}

/* Run as User from here on (the socket is open and belongs to the right group). */
/*
 * OpenPGP secret keys live in cables-keyholder only; an older milter
 * imported them into GnuPGHome, in the clear: remove them, and say so.
 */
static void
remove_pgp_secrets(const char *home)
{
	char fprs[64][PGP_FPR_LEN + 1];
	size_t n, files;
	struct cables_err err;

	if (pgp_remove_secrets(home, fprs, 64, &n, &files, &err) != CABLES_OK) {
		log_warnx("GnuPGHome %s: cannot remove the OpenPGP secret keys an older version left there: %s", home,
		    err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		log_info("GnuPGHome %s: removed OpenPGP secret key %s (secret keys live in cables-keyholder now)", home,
		    fprs[i]);
	if (files > 0)
		log_info("GnuPGHome %s: removed %zu secret key file%s from private-keys-v1.d", home, files,
		    files == 1 ? "" : "s");
}

static void
drop_privileges(const char *user, const char *gnupg_home)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		fatalx("User %s: no such user", user);
	/*
	 * A GnuPG home that does not exist yet is made for User (gpg refuses
	 * one owned by another), given to it through a descriptor of the
	 * directory just made, never by path, where a link could stand.
	 */
	if (geteuid() == 0 && mkdir(gnupg_home, 0700) == 0) {
		struct stat st;
		int fd;

		errno = 0;
		fd = open(gnupg_home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != 0 || fchown(fd, pw->pw_uid, pw->pw_gid) != 0)
			fatalx("GnuPGHome %s: cannot create it for User %s: %s", gnupg_home, user,
			    fd < 0 || errno != 0 ? strerror(errno) : "not the directory just made");
		close(fd);
	} else if (geteuid() == 0 && errno != EEXIST)
		fatalx("GnuPGHome %s: cannot create it for User %s: %s", gnupg_home, user, strerror(errno));
	/*
	 * Checked again now that it exists: one that was missing at the check
	 * could have been put there since by another user who may create
	 * entries in its directory (keyd's, in a shared /var/lib/cables).
	 */
	if (geteuid() == 0) {
		struct cables_err err;

		if (privdrop_private_dir("GnuPGHome", gnupg_home, pw->pw_uid, false, &err) != CABLES_OK)
			fatalx("%s", err.msg);
	}
	if (geteuid() != 0) {
		if (geteuid() != pw->pw_uid)
			fatalx("User %s: cannot switch user when not started as root", user);
		return;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		fatalx("User %s: cannot switch to it: %s", user, strerror(errno));
	/* setuid() would let the process dump core again on some systems. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* SIGUSR1 reloads the configuration.  libmilter's own signal thread stops the milter on SIGHUP. */
static void *
reload_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;)
		if (sigwait(set, &sig) == 0 && sig == SIGUSR1)
			milter_reload();
	return NULL;
}

static void
start_reload_thread(void)
{
	static sigset_t set;
	pthread_t tid;

	sigset_t stop;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	/*
	 * Blocked here, before any thread starts, so that only the reload
	 * thread takes SIGUSR1 and only libmilter's signal thread takes the
	 * signals that stop the milter (it waits for them once smfi_main()
	 * runs); a thread with them unblocked would die of them instead of
	 * shutting down cleanly.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&tid, NULL, reload_thread, &set) != 0)
		fatalx("cannot start the reload thread");
	pthread_detach(tid);
}

/* Written as root, before the privilege drop: through file_open_owned()'s checks. */
static void
write_pid_file(const char *path)
{
	char why[CABLES_ERR_MAX], line[32];
	int fd = file_open_owned(path, true, why, sizeof(why));

	if (fd < 0)
		fatalx("PidFile %s", why);
	snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (!write_fully(fd, line, strlen(line)))
		log_warn("PidFile %s", path);
	close(fd);
}

int
main(int argc, char **argv)
{
	const char *config_path = CABLES_DEFAULT_CONFIG;
	bool foreground = false, check_only = false, debug = false, nodelay;
	mode_t old_umask;
	int opened;
	struct config *cfg;
	struct keystore *ks;
	struct cables_err err;
	X509_STORE *anchors = NULL;
	char *pid_file;
	struct metrics_server *metrics = NULL;
	char metrics_why[256] = "";
	int ch, rc;

	while ((ch = getopt(argc, argv, "c:fndh")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check_only = true; break;
		case 'd': debug = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	cfg = config_load(config_path, true, &err);
	if (cfg == NULL) {
		fprintf(stderr, "cables-milter: %s\n", err.msg);
		return 1;
	}
	if (config_check_milter(cfg, &err) != CABLES_OK) {
		fprintf(stderr, "cables-milter: %s\n", err.msg);
		config_free(cfg);
		return 1;
	}
	if (check_runtime(cfg) != 0) {
		config_free(cfg);
		return 1;
	}
	if (check_only) {
		printf("cables-milter: %s: configuration OK\n", cfg->path);
		config_free(cfg);
		return 0;
	}

	no_core_dumps();
	if (log_open("cables-milter", cfg->log_facility, cfg->log_file, foreground, &err) != CABLES_OK) {
		fprintf(stderr, "cables-milter: %s\n", err.msg);
		return 1;
	}
	log_set_debug(debug);
	mime_init();

	if (smfi_setconn(cfg->socket) != MI_SUCCESS || smfi_register(milter_desc) != MI_SUCCESS) {
		fprintf(stderr, "cables-milter: cannot set up the milter socket %s\n", cfg->socket);
		return 1;
	}
	old_umask = umask(~(mode_t)cfg->socket_mode & 0777);	/* the socket is made with SocketMode */
	opened = smfi_opensocket(1);
	umask(old_umask);
	if (opened != MI_SUCCESS) {
		fprintf(stderr, "cables-milter: cannot listen on %s: %s\n", cfg->socket, strerror(errno));
		return 1;
	}
	if (secure_socket(cfg) != 0)
		return 1;
	nodelay = strncmp(cfg->socket, "inet", 4) == 0 && set_nodelay_on_listeners() > 0;
	/*
	 * Bound here, so that a port in use is said on the terminal; served once
	 * the threads are set up.  Not being able to serve metrics never stops
	 * the milter: any local user can take a loopback port first, and mail
	 * must not wait (or, under milter_default_action accept, leave
	 * unencrypted) for want of counters.
	 */
	if (cfg->metrics_listen != NULL && metrics_server_bind(cfg->metrics_listen, &metrics, &err) != CABLES_OK) {
		fprintf(stderr, "cables-milter: MetricsListen %s: running without metrics\n", err.msg);
		strlcpy_c(metrics_why, err.msg, sizeof(metrics_why));
	}
	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "cables-milter: cannot become a daemon: %s\n", strerror(errno));
		return 1;
	}
	if (cfg->pid_file != NULL)
		write_pid_file(cfg->pid_file);
	milter_load_reinject_key(cfg);
	if (cfg->user != NULL)
		drop_privileges(cfg->user, cfg->gnupg_home);

	/* SQLite connections must not cross fork(): open the store after daemon(). */
	if (keystore_open(&ks, cfg->key_store, true, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if (pgp_init(cfg->gnupg_home, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	remove_pgp_secrets(cfg->gnupg_home);
	if (cfg->trust_anchors != NULL && (anchors = smime_anchors_load(cfg->trust_anchors, &err)) == NULL)
		fatalx("%s", err.msg);
	pid_file = cfg->pid_file != NULL ? xstrdup(cfg->pid_file) : NULL;
	log_info("listening on %s%s (config %s)", cfg->socket, nodelay ? " with TCP_NODELAY" : "",
	    cfg->path);
	if (metrics != NULL)
		log_info("serving metrics on %s (GET /metrics)", cfg->metrics_listen);
	else if (metrics_why[0] != '\0')
		log_warnx("MetricsListen %s: running without metrics", metrics_why);
	milter_setup(cfg, ks, anchors);	/* the milter owns cfg and anchors now */
	start_reload_thread();
	/*
	 * Held messages keyd handed over (release.h); without the thread they
	 * wait, which loses nothing.  After start_reload_thread(), for the
	 * blocked stop signals.
	 */
	if (release_start(cfg, milter_keyholder(), &err) != CABLES_OK)
		log_warnx("held messages will not be released or returned by this milter: %s", err.msg);
	/* After start_reload_thread(): its thread inherits the blocked stop signals. */
	if (metrics != NULL && metrics_server_start(metrics, milter_render_metrics, NULL, &err) != CABLES_OK) {
		log_warnx("MetricsListen: %s: running without metrics", err.msg);
		metrics_server_stop(metrics);
		metrics = NULL;
	}
	rc = smfi_main();
	release_stop();
	log_info("stopped");
	metrics_server_stop(metrics);
	milter_teardown();
	keystore_close(ks);
	if (pid_file != NULL)
		unlink(pid_file);
	free(pid_file);
	log_close();
	return rc == MI_SUCCESS ? 0 : 1;
}
