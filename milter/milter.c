/* milter - libmilter callbacks and smfi wrappers; see milter.h. */
#include "autoconfig.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>
#include <openssl/crypto.h>

#include "addr.h"
#include "counters.h"
#include "log.h"
#include "metrics.h"
#include "message.h"
#include "keydclient.h"
#include "keystore.h"
#include "khclient.h"
#include "policy.h"
#include "milter.h"
#include "privdrop.h"
#include "dispatch.h"
#include "gate.h"
#include "reinject.h"
#include "seal.h"
#include "smime.h"
#include "util.h"

static struct keystore *store;
static struct smime_cache *cert_cache;

/*
 * The configuration in force and what is derived from it.  current holds
 * one reference; each message holds one from MAIL FROM to its end, so a
 * reload never changes the rules under a message in flight.
 */
struct runtime {
	struct config *cfg;
	X509_STORE *anchors;
	unsigned int refs;
};

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime *current;

/* The key of re-injection markers, loaded at start (before privileges are dropped). */
static uint8_t reinject_key[REINJECT_KEY_LEN];
static bool reinject_key_loaded;

/* S/MIME private-key operations go to cables-keyholder (KeyholderSocket at start; NULL: none). */
static struct khclient *keyholder;

/* The store key, loaded on demand for OpenPGP secrets only (see milter.h). */

struct conn {
	struct sockaddr_storage client;
	bool have_client;
	bool leadspc;		/* SMFIP_HDR_LEADSPC negotiated */
	bool can_delrcpt;	/* the MTA lets us remove recipients (split delivery) */
	bool can_hold;		/* and add them, and quarantine (On-KeyNotFound hold) */
	bool gate;		/* the re-injection listener ({daemon_name} is ReinjectDaemonName) */
	bool no_rcpt_check;	/* keyd failed an RCPT check of this message: no more of them */
	struct message *msg;
	struct runtime *rt;	/* the message's configuration */
	uint64_t busy_ns;	/* the milter's time on the message so far (its decisions), for the counters */
};

static struct runtime *
runtime_new(struct config *cfg, X509_STORE *anchors)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));

	rt->cfg = cfg;
	rt->anchors = anchors;
	rt->refs = 1;
	return rt;
}

static struct runtime *
runtime_acquire(void)
{
	struct runtime *rt;

	pthread_mutex_lock(&runtime_lock);
	rt = current;
	rt->refs++;
	pthread_mutex_unlock(&runtime_lock);
	return rt;
}

static void
runtime_release(struct runtime *rt)
{
	bool last;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&runtime_lock);
	last = --rt->refs == 0;
	pthread_mutex_unlock(&runtime_lock);
	if (last) {
		config_free(rt->cfg);
		X509_STORE_free(rt->anchors);
		free(rt);
	}
}

const struct config *
milter_config_get(void **ref)
{
	struct runtime *rt = runtime_acquire();

	*ref = rt;
	return rt->cfg;
}

void
milter_config_put(void *ref)
{
	runtime_release(ref);
}

const struct kh_transport *
milter_keyholder(void)
{
	return keyholder != NULL ? khclient_transport(keyholder) : NULL;
}

void
milter_load_reinject_key(const struct config *c)
{
	struct cables_err err;

	/*
	 * Created when missing and split delivery is on: only this milter makes
	 * and checks markers, so nobody else needs the key.  Without the key
	 * every marker is treated as forged, which is safe.
	 */
	reinject_key_loaded = seal_key_load(c->reinject_key, c->reinject_to != NULL, reinject_key, &err) ==
	    CABLES_OK;
	if (!reinject_key_loaded && c->reinject_to != NULL)
		log_warnx("split delivery unavailable: ReinjectKey: %s", err.msg);
	if (c->reinject_to != NULL && c->reinject_daemon_name == NULL)
		log_warnx("ReinjectTo is set without ReinjectDaemonName: unless the listener at %s runs this milter "
		    "in its verify-only mode, any local user can send through it past the milter "
		    "(see cables-milter(8))", c->reinject_to);
}

void
milter_setup(struct config *c, struct keystore *ks, X509_STORE *anchors)
{
	store = ks;
	current = runtime_new(c, anchors);
	gate_setup(time(NULL));
	if (cert_cache == NULL)
		cert_cache = smime_cache_new(1024);
	if (keyholder == NULL && c->keyholder_socket != NULL)
		keyholder = khclient_new(c->keyholder_socket);
}

/* A setting only a restart can change: say so when the file changed it. */
static void
restart_only(const char *key, const char *old, const char *new)
{
	if ((old == NULL) != (new == NULL) || (old != NULL && strcmp(old, new) != 0))
		log_warnx("configuration: %s changed (%s -> %s); it takes effect when cables-milter restarts",
		    key, old != NULL ? old : "none", new != NULL ? new : "none");
}

void
milter_reload(void)
{
	struct runtime *rt, *old;
	struct config *n, *o;
	X509_STORE *anchors = NULL;
	struct cables_err err;
	char mode_old[16], mode_new[16], store_old[512], store_new[512];

	o = current->cfg;	/* only this thread replaces current */
	n = config_load(o->path, true, &err);
	/* A new GnuPGHome must be the milter's alone, as at start (main.c check_gnupg_home). */
	if (n == NULL || config_check_milter(n, &err) != CABLES_OK ||
	    (strcmp(n->gnupg_home, o->gnupg_home) != 0 &&
	    privdrop_private_dir("GnuPGHome", n->gnupg_home, geteuid(), false, &err) != CABLES_OK) ||
	    (n->trust_anchors != NULL && (anchors = smime_anchors_load(n->trust_anchors, &err)) == NULL)) {
		log_warnx("configuration not reloaded, the old one stays in force: %s", err.msg);
		config_free(n);
		return;
	}
	restart_only("Socket", o->socket, n->socket);
	snprintf(mode_old, sizeof(mode_old), "%04o", o->socket_mode);
	snprintf(mode_new, sizeof(mode_new), "%04o", n->socket_mode);
	restart_only("SocketMode", mode_old, mode_new);
	restart_only("SocketGroup", o->socket_group, n->socket_group);
	restart_only("User", o->user, n->user);
	restart_only("PidFile", o->pid_file, n->pid_file);
	/* Compared as written, logged without a password (a changed password alone shows as the same URL). */
	if (strcmp(o->key_store, n->key_store) != 0) {
		keystore_spec_redact(o->key_store, store_old, sizeof(store_old));
		keystore_spec_redact(n->key_store, store_new, sizeof(store_new));
		log_warnx("configuration: KeyStore changed (%s -> %s%s); it takes effect when cables-milter restarts",
		    store_old, store_new, strcmp(store_old, store_new) == 0 ? ", its password" : "");
	}
	restart_only("LogFile", o->log_file, n->log_file);
	restart_only("LogFacility", o->log_facility, n->log_facility);
	restart_only("ReinjectKey", o->reinject_key, n->reinject_key);
	restart_only("KeyholderSocket", o->keyholder_socket, n->keyholder_socket);
	restart_only("MetricsListen", o->metrics_listen, n->metrics_listen);
	if (n->reinject_to != NULL && !reinject_key_loaded)
		log_warnx("configuration: split delivery needs ReinjectKey, which is read at start; "
		    "restart cables-milter");
	rt = runtime_new(n, anchors);
	pthread_mutex_lock(&runtime_lock);
	old = current;
	current = rt;
	pthread_mutex_unlock(&runtime_lock);
	log_info("configuration reloaded from %s", n->path);
	runtime_release(old);
}

void
milter_teardown(void)
{
	OPENSSL_cleanse(reinject_key, sizeof(reinject_key));
	smime_cache_free(cert_cache);
	cert_cache = NULL;
	gate_release();
	khclient_free(keyholder);
	keyholder = NULL;
	runtime_release(current);
	current = NULL;
}

static struct conn *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* --- smfi wrappers: the only place the MTA's edit operations are called. --- */

static int
mta_chgheader(void *arg, const char *name, int index, const char *value)
{
	return smfi_chgheader(arg, (char *)name, index, (char *)value) == MI_SUCCESS ? 0 : -1;
}

static int
mta_addheader(void *arg, const char *name, const char *value)
{
	return smfi_addheader(arg, (char *)name, (char *)value) == MI_SUCCESS ? 0 : -1;
}

static int
mta_insheader(void *arg, int index, const char *name, const char *value)
{
	return smfi_insheader(arg, index, (char *)name, (char *)value) == MI_SUCCESS ? 0 : -1;
}

static int
mta_delrcpt(void *arg, const char *rcpt)
{
	return smfi_delrcpt(arg, (char *)rcpt) == MI_SUCCESS ? 0 : -1;
}

static int
mta_addrcpt(void *arg, const char *rcpt)
{
	return smfi_addrcpt(arg, (char *)rcpt) == MI_SUCCESS ? 0 : -1;
}

static int
mta_quarantine(void *arg, const char *reason)
{
	return smfi_quarantine(arg, (char *)reason) == MI_SUCCESS ? 0 : -1;
}

static int
mta_replacebody(void *arg, const void *p, size_t n)
{
	return smfi_replacebody(arg, (unsigned char *)(uintptr_t)p, (int)n) == MI_SUCCESS ? 0 : -1;
}

/* --- outcome → MTA, in one place --- */

static const char *
queue_id(SMFICTX *ctx, struct message *m)
{
	if (m != NULL) {
		message_set_queue_id(m, smfi_getsymval(ctx, "i"));
		if (m->queue_id != NULL)
			return m->queue_id;
	}
	return "NOQUEUE";
}

/* One decided message for the counters; since is when the callback that decided it began. */
static void
count_message(const struct conn *c, const struct outcome *out, uint64_t since)
{
	enum direction d = c->gate ? DIRECTION_REINJECTION :
	    c->msg != NULL && c->msg->plan == PLAN_INBOUND ? DIRECTION_INBOUND : DIRECTION_OUTBOUND;

	counters_message(d, out, c->busy_ns + (metric_now_ns() - since));
}

void
milter_render_metrics(struct buf *out, void *arg)
{
	(void)arg;
	counters_render(out, cert_cache);
}

static sfsistat
apply_outcome(SMFICTX *ctx, struct message *m, const struct outcome *out)
{
	log_info("%s: %s: %s", queue_id(ctx, m), out->what, out->detail);
	switch (out->verdict) {
	case VERDICT_CONTINUE:
		return SMFIS_CONTINUE;
	case VERDICT_ACCEPT:
	case VERDICT_MODIFIED:
		return SMFIS_ACCEPT;
	case VERDICT_TEMPFAIL:
		if (out->rcode != NULL)
			smfi_setreply(ctx, (char *)out->rcode, (char *)out->xcode, (char *)out->reply);
		return SMFIS_TEMPFAIL;
	case VERDICT_REJECT:
		if (out->rcode != NULL)
			smfi_setreply(ctx, (char *)out->rcode, (char *)out->xcode, (char *)out->reply);
		return SMFIS_REJECT;
	}
	return SMFIS_TEMPFAIL;
}

static void
drop_message(struct conn *c)
{
	message_free(c->msg);
	c->msg = NULL;
	runtime_release(c->rt);
	c->rt = NULL;
}

/* --- callbacks --- */

static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
    unsigned long *pf3)
{
	const unsigned long actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;
	const unsigned long optional = SMFIF_DELRCPT | SMFIF_ADDRCPT | SMFIF_QUARANTINE | SMFIF_SETSYMLIST;
	const unsigned long hold = SMFIF_DELRCPT | SMFIF_ADDRCPT | SMFIF_QUARANTINE;
	/* Fewer round trips: no replies where we always continue, no unused events. */
	/* RCPT is answered: a recipient that cannot be classified is temp-failed alone. */
	const unsigned long wanted = SMFIP_HDR_LEADSPC | SMFIP_NOHELO | SMFIP_NOUNKNOWN |
	    SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_BODY;
	struct conn *c;

	if ((f0 & actions) != actions) {
		log_warnx("the MTA does not offer header and body changes; not filtering");
		return SMFIS_REJECT;
	}
	*pf0 = actions | (f0 & optional);
	*pf1 = f1 & wanted;
	*pf2 = 0;
	*pf3 = 0;
	/*
	 * Who may sign and the verify-only listener rest on {auth_authen} and
	 * {daemon_name} at MAIL FROM: ask for them rather than trust the MTA's
	 * macro lists (Postfix's defaults have them; an admin may trim them).
	 */
	if ((*pf0 & SMFIF_SETSYMLIST) != 0 &&
	    smfi_setsymlist(ctx, SMFIM_ENVFROM, (char *)"i {auth_authen} {daemon_name}") != MI_SUCCESS)
		log_warnx("cannot ask the MTA for the {auth_authen} and {daemon_name} macros");
	c = xcalloc(1, sizeof(*c));
	c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
	c->can_delrcpt = (*pf0 & SMFIF_DELRCPT) != 0;
	c->can_hold = (*pf0 & hold) == hold;
	smfi_setpriv(ctx, c);
	return SMFIS_CONTINUE;
}

static sfsistat
mlfi_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL) {
		/* An MTA that does not negotiate (old Sendmail): defaults. */
		c = xcalloc(1, sizeof(*c));
		smfi_setpriv(ctx, c);
	}
	if (hostaddr != NULL && (hostaddr->sa_family == AF_INET || hostaddr->sa_family == AF_INET6)) {
		size_t len = hostaddr->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6);

		memcpy(&c->client, hostaddr, len);
		c->have_client = true;
	}
	return SMFIS_NOREPLY;
}

/* Mail submitted on this host (no client address) and from InternalHosts counts as local. */
static bool
client_internal(const struct conn *c, const struct config *cfg)
{
	return !c->have_client || host_list_match(&cfg->internal_hosts, (const struct sockaddr *)&c->client);
}

/*
 * Is this the exit listener (ExitDaemonName: Postfix's
 * milter_macro_daemon_name there), which every message leaving the host
 * for a remote address passes after alias expansion and forwarding?  Its
 * mail is outbound whoever sent it: every remote recipient's policy applies.
 */
static bool
exit_listener(SMFICTX *ctx, const struct config *cfg)
{
	const char *name = smfi_getsymval(ctx, "{daemon_name}");

	return cfg->exit_daemon_name != NULL && name != NULL && strcmp(name, cfg->exit_daemon_name) == 0;
}

static sfsistat
mlfi_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	char *sender = addr_from_envelope(argv[0] != NULL ? argv[0] : "<>");
	const char *auth = smfi_getsymval(ctx, "{auth_authen}"), *daemon;
	const struct config *cfg;
	char *norm;
	bool trusted, exiting;

	drop_message(c);
	c->busy_ns = 0;
	c->rt = runtime_acquire();
	cfg = c->rt->cfg;
	if (sender == NULL)
		sender = xstrdup(argv[0]);
	trusted = (auth != NULL && auth[0] != '\0') || client_internal(c, cfg);
	norm = addr_normalize(sender, &cfg->addr);
	exiting = exit_listener(ctx, cfg);
	c->no_rcpt_check = false;
	c->msg = message_new(cfg, sender, (norm != NULL && domain_list_match(&cfg->local_domains, addr_domain(norm))) ||
	    exiting, trusted);
	free(norm);
	/*
	 * Never sign on the exit pass: the submission pass decided whether the
	 * submitter may sign as the sender; here the client is Postfix itself.
	 */
	if (exiting)
		c->msg->client_trusted = false;
	if (auth != NULL && auth[0] != '\0')
		c->msg->auth_login = xstrdup(auth);
	daemon = smfi_getsymval(ctx, "{daemon_name}");
	c->gate = cfg->reinject_daemon_name != NULL && daemon != NULL && strcmp(daemon, cfg->reinject_daemon_name) == 0;

	c->msg->header_leadspc = c->leadspc;
	if (argv[0] != NULL)
		message_set_mail_esmtp(c->msg, argv + 1);
	free(sender);
	return SMFIS_NOREPLY;
}

/* How long an RCPT waits for keyd's check: keyd answers from memory; a keyd that does not is not waited for. */
#define RCPT_CHECK_TIMEOUT_MS 500

/*
 * Should the recipient just added (the message's last) wait, alone, for
 * its domain's key servers to answer again?  Only a remote recipient of
 * local mail whose key keyd would have to look up, whose domain keyd has
 * marked unresponsive (its lookups recently got no answer), and whose
 * On-KeydError is tempfail: the lookup at the end of the message would
 * only wait out LookupTimeout and temp-fail the whole message, holding
 * back every other recipient.  A keyd that cannot be asked in
 * RCPT_CHECK_TIMEOUT_MS decides nothing here: the end of the message does,
 * and the message's later RCPTs are not checked (a keyd that hangs would
 * otherwise cost every RCPT of a long list its RCPT_CHECK_TIMEOUT_MS).
 * reply gets the SMTP text.
 */
static bool
rcpt_waits_for_domain(struct conn *c, char *reply, size_t reply_len)
{
	const struct config *cfg = c->rt->cfg;
	const struct rcpt *r = &c->msg->rcpts[c->msg->nrcpts - 1];
	struct keyd_check check;
	struct cables_err err;

	if (cfg->keyd_socket == NULL || c->gate || c->no_rcpt_check || !c->msg->sender_local || r->local ||
	    r->norm == NULL ||
	    policy_get(&cfg->policy, r->norm, PA_POLICY, NULL) == POLICY_NEVER ||
	    policy_get(&cfg->policy, r->norm, PA_ON_KEYD_ERROR, NULL) != ACTION_TEMPFAIL)
		return false;
	if (keyd_check_address(cfg->keyd_socket, r->norm, RCPT_CHECK_TIMEOUT_MS, &check, &err) != CABLES_OK) {
		c->no_rcpt_check = true;
		return false;
	}
	if (check.state != KEYD_CHECK_UNRESPONSIVE)
		return false;
	snprintf(reply, reply_len, "Cables: the key servers of %s do not answer; try this recipient again in %lld s",
	    addr_domain(r->norm), check.retry);
	return true;
}

static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	char reply[KEYD_ADDRESS_MAX + 128];

	if (c->msg != NULL && argv[0] != NULL && message_add_rcpt(c->msg, c->rt->cfg, argv[0], argv + 1)) {
		if (!rcpt_waits_for_domain(c, reply, sizeof(reply)))
			return SMFIS_CONTINUE;
		log_info("%s: tempfail: recipient %s: the key servers of its domain do not answer (cables-keyd "
		    "marked it unresponsive; On-KeydError tempfail): this recipient waits, the others go on",
		    queue_id(ctx, c->msg), c->msg->rcpts[c->msg->nrcpts - 1].addr);
		message_drop_last_rcpt(c->msg);
		smfi_setreply(ctx, "451", "4.4.3", reply);
		return SMFIS_TEMPFAIL;
	}
	if (c->msg == NULL || argv[0] == NULL)
		return SMFIS_CONTINUE;
	/* Neither local nor remote by any rule: no policy can be applied, so it waits. */
	log_info("%s: tempfail: recipient %s: cannot classify (not an address, an address literal, or a domain "
	    "IDNA 2008 refuses)", queue_id(ctx, c->msg), argv[0]);
	smfi_setreply(ctx, "451", "4.1.3", "Cables: cannot classify this recipient address for encryption policy");
	return SMFIS_TEMPFAIL;
}

static sfsistat
mlfi_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = conn_of(ctx);

	if (c->msg != NULL)
		message_add_header(c->msg, name, value);
	return SMFIS_NOREPLY;
}

static struct milter_env
env_of(const struct conn *c)
{
	time_t now = time(NULL);
	struct milter_env env = { c->rt->cfg, store, cert_cache, NULL, c->rt->anchors, now, NULL, NULL, NULL,
	    keyholder != NULL ? khclient_transport(keyholder) : NULL };

	if (reinject_key_loaded)
		env.marker_key = reinject_key;
	if (c->rt->cfg->reinject_to != NULL && reinject_key_loaded && c->can_delrcpt)
		env.reinject_key = reinject_key;
	return env;
}

static sfsistat
mlfi_eoh(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct milter_env env;
	struct outcome out;
	sfsistat rc;
	uint64_t start;

	if (c->msg == NULL || c->gate)	/* the gate decides on the whole message */
		return SMFIS_CONTINUE;
	start = metric_now_ns();
	env = env_of(c);
	khclient_outage_clear();	/* nothing left from another message served on this thread */
	dispatch_eoh(c->msg, &env, &out);
	if (out.verdict == VERDICT_CONTINUE) {
		c->busy_ns += metric_now_ns() - start;
		return SMFIS_CONTINUE;
	}
	count_message(c, &out, start);
	rc = apply_outcome(ctx, c->msg, &out);
	drop_message(c);
	return rc;
}

static sfsistat
mlfi_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct conn *c = conn_of(ctx);

	if (c->msg != NULL)
		message_add_body(c->msg, chunk, len);
	return SMFIS_NOREPLY;
}

static sfsistat
mlfi_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct milter_env env;
	struct mta mta = { mta_chgheader, mta_addheader, mta_insheader, mta_replacebody, mta_delrcpt,
	    mta_quarantine, ctx, false, NULL };
	struct outcome out;
	sfsistat rc;
	uint64_t start = metric_now_ns();

	if (c == NULL || c->msg == NULL) {
		log_warnx("%s: end of message without a message context; temp-failing",
		    queue_id(ctx, NULL));
		return SMFIS_TEMPFAIL;
	}
	env = env_of(c);
	mta.leadspc = c->leadspc;
	mta.addrcpt = c->can_hold ? mta_addrcpt : NULL;
	queue_id(ctx, c->msg);	/* a hold records it */
	khclient_outage_clear();	/* decryption and signing happen in this callback, on this thread */
	if (c->gate)
		gate_check(c->msg, &env, &out);
	else
		dispatch_eom(c->msg, &env, &mta, &out);
	count_message(c, &out, start);
	rc = apply_outcome(ctx, c->msg, &out);
	drop_message(c);
	return rc;
}

static sfsistat
mlfi_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL)
		drop_message(c);
	return SMFIS_CONTINUE;
}

static sfsistat
mlfi_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL) {
		drop_message(c);
		free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

struct smfiDesc milter_desc = {
	.xxfi_name = "cables",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_DELRCPT | SMFIF_ADDRCPT | SMFIF_QUARANTINE |
	    SMFIF_SETSYMLIST,
	.xxfi_connect = mlfi_connect,
	.xxfi_helo = NULL,
	.xxfi_envfrom = mlfi_envfrom,
	.xxfi_envrcpt = mlfi_envrcpt,
	.xxfi_header = mlfi_header,
	.xxfi_eoh = mlfi_eoh,
	.xxfi_body = mlfi_body,
	.xxfi_eom = mlfi_eom,
	.xxfi_abort = mlfi_abort,
	.xxfi_close = mlfi_close,
	.xxfi_unknown = NULL,
	.xxfi_data = NULL,
	.xxfi_negotiate = mlfi_negotiate,
};
