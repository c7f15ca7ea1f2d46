/*
 * cables-keyd - the key daemon: answers key lookups on a local UNIX socket
 * (keydproto.h), from the key store and from DNS (lookup.h).
 *
 * One thread per connection; a connection may send many requests.  The
 * addresses of a lookup request are looked up side by side (batch.h), and
 * the reply comes within LookupTimeout + BATCH_MARGIN_MS.  A request larger
 * than KEYD_REQUEST_MAX, or one that does not parse, gets an "error="
 * reply; a client that says nothing for 30 s is dropped.  SIGTERM/SIGINT
 * stop it; SIGHUP reads the configuration again.
 */
#include "autoconfig.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "dns.h"
#include "exchange.h"
#include "holds.h"
#include "keydproto.h"
#include "keystore.h"
#include "khsign.h"
#include "log.h"
#include "privdrop.h"
#include "lookup.h"
#include "metrics_server.h"
#include "peer.h"
#include "pgp.h"
#include "smime.h"
#include "util.h"
#include "xserver.h"

#define REQUEST_MAX KEYD_REQUEST_MAX
#define IDLE_MS 30000

static volatile sig_atomic_t stopping, reloading;
static struct keyd *keyd;
static gid_t admin_gid;		/* AdminGroup's, when admin_group_set */
static bool admin_group_set;

/* One client connection: on which socket it came, and who it is (SO_PEERCRED). */
struct client {
	int fd;
	bool admin;		/* came on KeydAdminSocket and was let in */
	uid_t uid;
	gid_t gid;
};
static struct xserver *xserver;	/* the key-exchange endpoint, or NULL */

static void
on_stop(int sig)
{
	stopping = 1;
}

static void
on_hup(int sig)
{
	reloading = 1;
}

/*
 * What cfg sets up for lookups: the resolver (an address takes two queries,
 * SMIMEA and OPENPGPKEY, together within LookupTimeout) and TrustAnchors
 * (for SMIMEA usages 0 and 1).
 */
static cables_status
setup(const struct config *cfg, struct dns_resolver **res, X509_STORE **anchors, struct cables_err *err)
{
	cables_status st;

	*anchors = NULL;
	st = dns_resolver_new(cfg->resolver, cfg->dnssec_anchor, (unsigned int)(cfg->lookup_timeout_ms / 2), res, err);
	if (st != CABLES_OK)
		return st;
	/* When keyd's cache asks again, DNS answers afresh. */
	if ((st = dns_resolver_cap_ttl(*res, cfg->cache_max_ttl_ms / 1000, err)) != CABLES_OK) {
		dns_resolver_free(*res);
		*res = NULL;
		return st;
	}
	if (cfg->trust_anchors != NULL && (*anchors = smime_anchors_load(cfg->trust_anchors, err)) == NULL) {
		dns_resolver_free(*res);
		*res = NULL;
		return CABLES_ERR_SYNTAX;
	}
	return CABLES_OK;
}

/*
 * SIGHUP: read the configuration again; a file that does not load (or whose
 * resolver or trust anchors cannot be set up) leaves the old one in force.
 * KeydSocket, User, KeyStore and TempDir take effect on restart.
 */
static void
reload(const char *path, struct config **cfg)
{
	struct config *fresh;
	struct dns_resolver *res;
	X509_STORE *anchors;
	struct cables_err err;

	if ((fresh = config_load(path, true, &err)) == NULL) {
		log_warnx("configuration not reloaded, the old one stays in force: %s", err.msg);
		return;
	}
	if (setup(fresh, &res, &anchors, &err) != CABLES_OK) {
		log_warnx("configuration not reloaded, the old one stays in force: %s: %s", path, err.msg);
		config_free(fresh);
		return;
	}
	if (fresh->keyd_socket == NULL || strcmp(fresh->keyd_socket, (*cfg)->keyd_socket) != 0)
		log_warnx("configuration: KeydSocket changed; it takes effect when cables-keyd restarts");
	/* The listening socket's path and the pid file stay the old ones: keep them in the new configuration. */
	free(fresh->keyd_socket);
	fresh->keyd_socket = xstrdup((*cfg)->keyd_socket);
	free(fresh->keyd_pid_file);
	fresh->keyd_pid_file = (*cfg)->keyd_pid_file != NULL ? xstrdup((*cfg)->keyd_pid_file) : NULL;
	if ((fresh->admin_group == NULL) != ((*cfg)->admin_group == NULL) ||
	    (fresh->admin_group != NULL && strcmp(fresh->admin_group, (*cfg)->admin_group) != 0))
		log_warnx("configuration: AdminGroup changed; it takes effect when cables-keyd restarts");
	if ((fresh->keyd_metrics_listen == NULL) != ((*cfg)->keyd_metrics_listen == NULL) ||
	    (fresh->keyd_metrics_listen != NULL && strcmp(fresh->keyd_metrics_listen, (*cfg)->keyd_metrics_listen) != 0))
		log_warnx("configuration: KeydMetricsListen changed; it takes effect when cables-keyd restarts");
	free(fresh->keyd_metrics_listen);	/* the metrics port is bound at start */
	fresh->keyd_metrics_listen = (*cfg)->keyd_metrics_listen != NULL ? xstrdup((*cfg)->keyd_metrics_listen) : NULL;
	free(fresh->keyd_admin_socket);	/* so are the administration socket and AdminGroup */
	fresh->keyd_admin_socket = (*cfg)->keyd_admin_socket != NULL ? xstrdup((*cfg)->keyd_admin_socket) : NULL;
	*cfg = fresh;
	keyd_reconfigure(keyd, fresh, res, anchors);
	log_info("configuration reloaded from %s", path);
}

/* Through file_open_owned()'s checks, like the log file: keyd may still be root here. */
static void
write_pid(const char *path)
{
	char why[CABLES_ERR_MAX], line[32];
	int fd = file_open_owned(path, true, why, sizeof(why));

	if (fd < 0)
		fatalx("KeydPidFile %s", why);
	snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (!write_fully(fd, line, strlen(line)))
		log_warn("KeydPidFile %s", path);
	close(fd);
}

static void
usage(void)
{
	fprintf(stderr, "usage: cables-keyd [-fn] [-c config-file]\n"
	    "  -c FILE  configuration file (default " CABLES_DEFAULT_CONFIG ")\n"
	    "  -f       stay in the foreground, log to stderr unless LogFile is set\n"
	    "  -n       check the configuration and exit\n");
	exit(2);
}

/* Where the request in buf[0..len) ends (after its empty line), or 0 when it is not complete. */
static size_t
request_end(const char *buf, size_t len, size_t *text_len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n') {
			*text_len = i + 1;
			return i + 2;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			*text_len = i + 1;
			return i + 3;
		}
	}
	return 0;
}

/* Requests that change or reveal the store: only on KeydAdminSocket. */
static bool
admin_request(enum keyd_request_type t)
{
	return t == KEYD_IMPORT || t == KEYD_DELETE || t == KEYD_LIST;
}

/* batch_lookup_fn for keyd's lookups. */
static void
lookup_one(void *arg, const char *addr, const char *const *all, size_t nall, struct buf *out)
{
	keyd_lookup(arg, addr, all, nall, time(NULL), out);
}

/* /metrics (KeydMetricsListen) and request=stats: the lookups' and the exchange endpoint's counters. */
static void
render_metrics(struct buf *out, void *arg)
{
	(void)arg;
	keyd_metrics(keyd, out);
	xserver_metrics(xserver, out);
	holds_metrics(out);
}

static void
answer(const struct client *cl, const char *text, size_t len, struct buf *out)
{
	struct keyd_request req;
	struct cables_err err;

	if (keyd_request_parse(text, len, &req, &err) != CABLES_OK) {
		keyd_error_format(out, "%s", err.msg);
	} else if (admin_request(req.type) && !cl->admin) {
		log_warnx("keyd: an administration request (import, delete or list) from uid %lu on KeydSocket: "
		    "refused (it is taken on KeydAdminSocket only)", (unsigned long)cl->uid);
		keyd_error_format(out, "administration requests are taken on KeydAdminSocket only");
	} else if (req.type == KEYD_STATS) {
		struct buf exposition;

		keyd_stats(keyd, out);
		xserver_stats(xserver, out);
		holds_stats(out);
		/* The same numbers as KeydMetricsListen's, from the same renderer, for cables-keyctl stats. */
		buf_init(&exposition);
		render_metrics(&exposition, NULL);
		keyd_stats_metrics_format(out, exposition.data, exposition.len);
		buf_release(&exposition);
	} else if (req.type == KEYD_IMPORT) {
		keyd_import(keyd, &req, time(NULL), out);
	} else if (req.type == KEYD_DELETE) {
		keyd_delete(keyd, &req, out);
	} else if (req.type == KEYD_LIST) {
		keyd_list(keyd, out);
	} else if (req.type == KEYD_CHECK) {
		/* From memory and the store only, at once: the milter asks at RCPT time. */
		for (size_t i = 0; i < req.naddresses; i++) {
			struct keyd_check c;

			keyd_check(keyd, req.addresses[i], time(NULL), &c);
			keyd_check_format(out, &c);
		}
	} else {
		size_t late = batch_run(lookup_one, keyd, (const char *const *)req.addresses, req.naddresses,
		    keyd_lookup_timeout_ms(keyd) + BATCH_MARGIN_MS, out);

		if (late > 0)
			log_warnx("keyd: %zu of %zu lookups of a request did not finish within LookupTimeout: tempfail for them",
			    late, req.naddresses);
	}
	buf_appends(out, "\n");
	keyd_request_release(&req);
}

static void *
serve(void *arg)
{
	struct client *cl = arg;
	int fd = cl->fd;
	char *buf = xmalloc(REQUEST_MAX + 1);
	size_t have = 0;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		size_t end, text_len;
		ssize_t n;

		while (have > 0 && (end = request_end(buf, have, &text_len)) > 0) {
			struct buf out;

			buf_init(&out);
			answer(cl, buf, text_len, &out);
			if (!write_fully(fd, out.data, out.len)) {
				buf_release(&out);
				goto done;
			}
			buf_release(&out);
			memmove(buf, buf + end, have - end);
			have -= end;
		}
		if (have == REQUEST_MAX) {
			static const char too_big[] = "error=request larger than " KEYD_REQUEST_MAX_S "\n\n";

			write_fully(fd, too_big, sizeof(too_big) - 1);
			goto done;
		}
		if (poll(&p, 1, IDLE_MS) <= 0)
			goto done;
		n = read(fd, buf + have, REQUEST_MAX - have);
		if (n <= 0)
			goto done;
		have += (size_t)n;
	}
done:
	close(fd);
	free(buf);
	free(cl);
	return NULL;
}

/* Is uid (primary group gid) root, or a member of AdminGroup? */
static bool
admin_allowed(uid_t uid, gid_t gid)
{
	struct passwd pw, *pwp = NULL;
	gid_t *groups;
	int n = 64;
	char pwbuf[4096];
	bool member = false;

	if (uid == 0)
		return true;
	if (!admin_group_set)
		return false;
	if (gid == admin_gid)
		return true;
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || pwp == NULL)
		return false;
	groups = xreallocarray(NULL, (size_t)n, sizeof(*groups));
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
		/* n now says how many there are. */
		groups = xreallocarray(groups, (size_t)n, sizeof(*groups));
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
			n = 0;
	}
	for (int i = 0; i < n && !member; i++)
		member = groups[i] == admin_gid;
	free(groups);
	return member;
}

static void
store_changed(void *arg, const char *norm)
{
	keyd_store_changed(keyd, norm);
}

/*
 * Hear of keys deleted and pins changed by the other MTAs sharing the key
 * store (PostgreSQL; nothing with SQLite): their cached answers go.  A lost
 * connection is logged once, and once more when it is back.
 */
static void
watch_store(struct keystore *ks)
{
	static bool lost;
	struct cables_err err = { "" };

	if (keystore_changes_take(ks, store_changed, NULL, &err) != CABLES_OK) {
		if (!lost)
			log_warnx("%s; lookups answer tempfail until it is back", err.msg);
		lost = true;
	} else if (lost) {
		log_info("key store %s is reachable again", keystore_name(ks));
		lost = false;
	}
}

/* Accept one client on lfd (admin: KeydAdminSocket), learn who it is, and serve it in a thread of its own. */
static void
accept_client(int lfd, bool admin)
{
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	struct client *cl;
	pthread_t tid;
	int fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) != 0) {
		log_warn("keyd: peer credentials");
		close(fd);
		return;
	}
	if (admin && !admin_allowed(cred.uid, cred.gid)) {
		static const char refused[] = "error=not allowed: KeydAdminSocket takes root and AdminGroup only\n\n";

		log_warnx("keyd: KeydAdminSocket: uid %lu (gid %lu) refused: neither root nor in AdminGroup",
		    (unsigned long)cred.uid, (unsigned long)cred.gid);
		write_fully(fd, refused, sizeof(refused) - 1);
		close(fd);
		return;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->fd = fd;
	cl->admin = admin;
	cl->uid = cred.uid;
	cl->gid = cred.gid;
	if (pthread_create(&tid, NULL, serve, cl) != 0) {
		close(fd);
		free(cl);
		return;
	}
	pthread_detach(tid);
}

/* A listening UNIX socket at path (the setting's name for messages), with group and mode. */
static int
listen_on(const char *what, const char *path, const char *group, mode_t mode)
{
	struct group *gr = NULL;
	struct cables_err err;
	int fd;

	if (group != NULL && (gr = getgrnam(group)) == NULL)
		fatalx("%s %s: group %s: no such group", what, path, group);
	/* As the keyholder's: no one else may put a socket of theirs in keyd's place (the admin socket is root's). */
	if (privdrop_socket_dir(what, path, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if ((fd = privdrop_listen(what, path, gr != NULL ? gr->gr_gid : (gid_t)-1, mode, 64, &err)) < 0)
		fatalx("%s", err.msg);
	return fd;
}

/*
 * keyd faces the network; cables-keyholder tells its clients apart by uid
 * alone.  keyd running as the milter's User would get every operation the
 * milter gets (decryptions for every local user, signatures as them): so
 * when a keyholder is configured, keyd needs a KeydUser of its own.
 */
static cables_status
user_check(const struct config *cfg, struct cables_err *err)
{
	if (cfg->keyholder_socket == NULL || cfg->user == NULL)
		return CABLES_OK;
	if (cfg->keyd_user == NULL)
		return cables_fail(err, CABLES_ERR_ARG, "KeyholderSocket and User are set but KeydUser is not: "
		    "keyd would run as the milter's User %s and get from cables-keyholder whatever the milter gets; "
		    "give keyd a KeydUser of its own", cfg->user);
	if (strcmp(cfg->keyd_user, cfg->user) == 0)
		return cables_fail(err, CABLES_ERR_ARG, "KeydUser %s is the milter's User: cables-keyholder could "
		    "not tell keyd from the milter; give keyd a user of its own", cfg->keyd_user);
	return CABLES_OK;
}

int
main(int argc, char **argv)
{
	const char *config_path = CABLES_DEFAULT_CONFIG;
	bool foreground = false, check_only = false;
	struct rlimit nocore = { 0, 0 };
	struct config *cfg;
	struct keystore *ks;
	struct dns_resolver *res;
	X509_STORE *anchors;
	struct cables_err err;
	struct sigaction sa;
	char home[64];
	struct khsign *khsign = NULL;
	struct x_signer signer = { NULL, NULL };
	int ch, lfd, afd = -1;
	struct metrics_server *metrics = NULL;

	while ((ch = getopt(argc, argv, "c:fnh")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check_only = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	setrlimit(RLIMIT_CORE, &nocore);
	if ((cfg = config_load(config_path, true, &err)) == NULL) {
		fprintf(stderr, "cables-keyd: %s\n", err.msg);
		return 1;
	}
	if (cfg->keyd_socket == NULL) {
		fprintf(stderr, "cables-keyd: %s: KeydSocket is none: nowhere to listen\n", cfg->path);
		config_free(cfg);
		return 1;
	}
	if (user_check(cfg, &err) != CABLES_OK || setup(cfg, &res, &anchors, &err) != CABLES_OK) {
		fprintf(stderr, "cables-keyd: %s: %s\n", cfg->path, err.msg);
		config_free(cfg);
		return 1;
	}
	if (check_only) {
		/* The key-exchange endpoint's files must be readable (the port is bound only when serving). */
		if (cfg->exchange_listen != NULL && (cfg->exchange_cert == NULL || cfg->exchange_cert_key == NULL ||
		    cfg->exchange_key == NULL || cfg->keyholder_socket == NULL ||
		    access(cfg->exchange_cert, R_OK) != 0 || access(cfg->exchange_cert_key, R_OK) != 0)) {
			fprintf(stderr, "cables-keyd: %s: ExchangeListen: %s\n", cfg->path,
			    cfg->exchange_cert == NULL || cfg->exchange_cert_key == NULL || cfg->exchange_key == NULL ?
			    "needs ExchangeCertificate, ExchangeCertificateKey and ExchangeKey" :
			    cfg->keyholder_socket == NULL ? "needs KeyholderSocket (cables-keyholder signs with ExchangeKey)" :
			    "the certificate or its key cannot be read");
			dns_resolver_free(res);
			X509_STORE_free(anchors);
			config_free(cfg);
			return 1;
		}
		printf("cables-keyd: %s: configuration OK\n", cfg->path);
		dns_resolver_free(res);
		X509_STORE_free(anchors);
		config_free(cfg);
		return 0;
	}
	peer_global_init();
	/* ExchangeKey is the keyholder's: keyd asks it for each signature and never reads the key. */
	if (cfg->exchange_key != NULL && cfg->keyholder_socket != NULL) {
		khsign = khsign_new(cfg->keyholder_socket);
		signer = khsign_signer(khsign);
		if (cfg->local_domains.count > 0)
			peer_sign_as(&signer, cfg->local_domains.names[0]);	/* our requests: as our first domain */
	}
	if (log_open("cables-keyd", cfg->log_facility, cfg->log_file, foreground, &err) != CABLES_OK) {
		fprintf(stderr, "cables-keyd: %s\n", err.msg);
		return 1;
	}
	/*
	 * Signals first: once the sockets are there, scripts take keyd as
	 * started, and a SIGHUP or SIGTERM then must not find the default action.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	/* Administration apart: root, and AdminGroup when set (checked again per client, SO_PEERCRED). */
	if (cfg->admin_group != NULL) {
		struct group *gr = getgrnam(cfg->admin_group);

		if (gr == NULL)
			fatalx("AdminGroup %s: no such group", cfg->admin_group);
		admin_gid = gr->gr_gid;
		admin_group_set = true;
	}
	if (cfg->keyd_admin_socket != NULL)
		afd = listen_on("KeydAdminSocket", cfg->keyd_admin_socket, cfg->admin_group,
		    cfg->admin_group != NULL ? 0660 : 0600);
	/* Not being able to serve metrics never stops keyd (any local user can take the port first). */
	if (cfg->keyd_metrics_listen != NULL && metrics_server_bind(cfg->keyd_metrics_listen, &metrics, &err) != CABLES_OK)
		log_warnx("KeydMetricsListen %s: running without metrics", err.msg);
	/* The lookup socket last: once it is there, both are (what the tests and scripts wait for). */
	lfd = listen_on("KeydSocket", cfg->keyd_socket, cfg->socket_group, (mode_t)cfg->socket_mode);
	if (!foreground && daemon(0, 0) != 0)
		fatalx("cannot become a daemon: %s", strerror(errno));
	if (cfg->exchange_listen != NULL && cfg->keyholder_socket == NULL)
		fatalx("ExchangeListen needs KeyholderSocket: cables-keyholder signs the answers with ExchangeKey");
	if (cfg->exchange_listen != NULL && xserver_prepare(cfg, &signer, &xserver, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if (cfg->keyd_user != NULL && privdrop_to("KeydUser", cfg->keyd_user, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	else if (cfg->keyd_user == NULL && cfg->user != NULL && privdrop_to("User", cfg->user, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if (keystore_open(&ks, cfg->key_store, true, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	/* OpenPGP keys found in DNS are read by gpg in a home of keyd's own. */
	if (pgp_temp_home(cfg->temp_dir, home, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	keyd = keyd_new(cfg, ks, res, anchors, home);
	if (khsign != NULL) {
		keyd_set_epoch_check(keyd, khsign_epoch, khsign);
		keyd_set_vouch(keyd, khsign_vouch, khsign);
	}
	if (xserver != NULL) {
		if (xserver_start(xserver, keyd, &err) != CABLES_OK)
			fatalx("%s", err.msg);
		log_info("serving keys on %s (%s)", cfg->exchange_listen, X_PATH);
	}
	if (metrics != NULL && metrics_server_start(metrics, render_metrics, NULL, &err) != CABLES_OK) {
		log_warnx("KeydMetricsListen: %s: running without metrics", err.msg);
		metrics_server_stop(metrics);
		metrics = NULL;
	}
	if (metrics != NULL)
		log_info("serving metrics on %s (GET /metrics)", cfg->keyd_metrics_listen);
	if (holds_start(keyd, ks, &err) != CABLES_OK)
		fatalx("%s", err.msg);
	if (cfg->keyd_pid_file != NULL)
		write_pid(cfg->keyd_pid_file);
	if (cfg->exchange_key != NULL && cfg->keyd_user == NULL && cfg->user != NULL)
		log_warnx("ExchangeKey is set but KeydUser is not: keyd runs as the milter's User %s, for which "
		    "cables-keyholder makes no exchange signatures; give keyd a KeydUser of its own", cfg->user);
	log_info("listening on %s, administration on %s (config %s)", cfg->keyd_socket,
	    cfg->keyd_admin_socket != NULL ? cfg->keyd_admin_socket : "none", cfg->path);
	watch_store(ks);
	while (!stopping) {
		struct pollfd p[3] = { { lfd, POLLIN, 0 }, { afd, POLLIN, 0 }, { keystore_changes_fd(ks), POLLIN, 0 } };

		if (reloading) {
			reloading = 0;
			reload(config_path, &cfg);
		}
		/* A shared store's changes wake us; without a connection to it, try again within the timeout. */
		if (poll(p, 3, 500) < 0)
			continue;
		watch_store(ks);
		if (p[0].revents & POLLIN)
			accept_client(lfd, false);
		if (afd >= 0 && (p[1].revents & POLLIN))
			accept_client(afd, true);
	}
	log_info("stopped");
	close(lfd);
	unlink(cfg->keyd_socket);
	if (afd >= 0) {
		close(afd);
		unlink(cfg->keyd_admin_socket);
	}
	if (cfg->keyd_pid_file != NULL)
		unlink(cfg->keyd_pid_file);
	metrics_server_stop(metrics);
	xserver_stop(xserver);
	holds_stop();
	khsign_free(khsign);
	pgp_temp_home_remove(home);
	keyd_free(keyd);	/* and with it cfg */
	keystore_close(ks);
	log_close();
	return 0;
}
