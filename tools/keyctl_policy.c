/*
 * keyctl_policy - "cables-keyctl policy show|set|unset": the effective
 * policy of an address, and editing the Policy lines of the configuration.
 *
 * set/unset rewrite the file as postconf -e does main.cf: the target's
 * Policy lines become one line (or none), comments and other lines stay as
 * they are, the result is checked by the configuration parser before
 * anything is written, and the file is replaced atomically (same mode).
 * With PidFile set, the running milter is told to reload (SIGUSR1).
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "keyctl.h"
#include "policy.h"
#include "util.h"

static void
show(const struct config *cfg, const char *arg)
{
	char *norm;
	bool local;

	if (!addr_valid(arg) && !domain_valid(arg))
		keyctl_die("'%s' is not an email address", arg);
	norm = addr_normalize(arg, &cfg->addr);
	if (norm == NULL)
		norm = xasprintf("postmaster@%s", arg);	/* a domain: what applies to its addresses */
	local = domain_list_match(&cfg->local_domains, addr_domain(norm));
	printf("policy for %s (%s, %s)\n", arg, norm, local ? "local: inbound mail is decrypted, not encrypted" :
	    "remote");
	for (int a = 0; a < PA_COUNT; a++) {
		const struct policy_entry *e;
		int v = policy_get(&cfg->policy, norm, (enum policy_attr)a, &e);
		char from[200];

		if (e != NULL)
			snprintf(from, sizeof(from), "Policy %s (%s:%u)", e->match, cfg->path, e->line[a]);
		else if (cfg->policy.dflt_line[a] != 0)
			snprintf(from, sizeof(from), "%s (%s:%u)", a == PA_POLICY ? "DefaultPolicy" :
			    policy_attr_name((enum policy_attr)a), cfg->path, cfg->policy.dflt_line[a]);
		else
			snprintf(from, sizeof(from), "built-in default");
		printf("  %-17s %-11s %s%s\n", policy_attr_name((enum policy_attr)a),
		    policy_value_name((enum policy_attr)a, v), from,
		    a == PA_SIGN || a == PA_SELF ? "   [as sender]" : "");
	}
	free(norm);
}

/* The attributes of one target, as value words (NULL: not set). */
struct attrs {
	const char *word[PA_COUNT];
};

/* Does this config line set Policy for target?  Collect its attributes. */
static bool
policy_line_for(const char *line, const char *target, struct attrs *into)
{
	char *copy = xstrdup(line), *save = NULL, *key, *t, *w;
	bool match = false;

	key = strtok_r(copy, " \t\r\n", &save);
	if (key == NULL || !str_ieq(key, "Policy"))
		goto out;
	t = strtok_r(NULL, " \t\r\n", &save);
	if (t == NULL || !str_ieq(t, target))
		goto out;
	match = true;
	while ((w = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		char *eq = strchr(w, '=');
		int a = PA_POLICY, v;

		if (eq != NULL) {
			*eq = '\0';
			a = policy_attr_find(w);
		}
		if (a >= 0 && policy_value_parse((enum policy_attr)a, eq == NULL ? w : eq + 1, &v))
			into->word[a] = policy_value_name((enum policy_attr)a, v);
	}
out:
	free(copy);
	return match;
}

static char *
format_line(const char *target, const struct attrs *at)
{
	struct buf b;
	int n = 0;

	buf_init(&b);
	buf_printf(&b, "Policy %s", target);
	for (int a = 0; a < PA_COUNT; a++) {
		if (at->word[a] == NULL)
			continue;
		if (a == PA_POLICY)
			buf_printf(&b, " %s", at->word[a]);
		else
			buf_printf(&b, " %s=%s", policy_attr_name((enum policy_attr)a), at->word[a]);
		n++;
	}
	if (n == 0) {
		buf_release(&b);
		return NULL;
	}
	buf_appends(&b, "\n");
	return b.data;
}

static void
write_atomically(const char *path, const struct buf *text)
{
	char *tmp = xasprintf("%s.cables-keyctl.XXXXXX", path);
	struct stat sb;
	int fd;

	if (stat(path, &sb) != 0)
		keyctl_die("%s: %s", path, strerror(errno));
	fd = mkstemp(tmp);
	if (fd < 0)
		keyctl_die("%s: cannot create a temporary file beside it: %s", path, strerror(errno));
	if (fchmod(fd, sb.st_mode & 07777) != 0 || (fchown(fd, sb.st_uid, sb.st_gid) != 0 && geteuid() == 0) ||
	    write(fd, text->data, text->len) != (ssize_t)text->len || fsync(fd) != 0) {
		int saved = errno;

		close(fd);
		unlink(tmp);
		keyctl_die("%s: cannot write: %s", path, strerror(saved));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int saved = errno;

		unlink(tmp);
		keyctl_die("%s: cannot replace: %s", path, strerror(saved));
	}
	free(tmp);
}

/* Tell the running milter (PidFile) to reload; say what happened. */
static void
reload_milter(const struct config *cfg)
{
	FILE *fp;
	long pid = 0;

	if (cfg->pid_file == NULL || (fp = fopen(cfg->pid_file, "r")) == NULL) {
		printf("reload cables-milter to apply it (kill -USR1 its pid)\n");
		return;
	}
	if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(fp);
	if (pid > 0 && kill((pid_t)pid, SIGUSR1) == 0)
		printf("cables-milter (pid %ld) reloads its configuration\n", pid);
	else
		printf("could not signal cables-milter (pid file %s): reload it to apply\n", cfg->pid_file);
}

static void
edit(const struct config *cfg, const char *path, bool set, int argc, char **argv)
{
	const char *target = argv[0];
	struct attrs at;
	struct buf text, out;
	struct cables_err err;
	struct config *check;
	char *line = NULL, *newline;
	size_t cap = 0;
	ssize_t n;
	bool placed = false, found = false;
	FILE *fp;

	memset(&at, 0, sizeof(at));
	if (strchr(target, '@') != NULL ? !addr_valid(target) :
	    !domain_valid(target[0] == '.' ? target + 1 : target))
		keyctl_die("'%s' is not an address, a domain or a .domain", target);
	fp = fopen(path, "r");
	if (fp == NULL)
		keyctl_die("%s: %s", path, strerror(errno));
	buf_init(&text);
	while ((n = getline(&line, &cap, fp)) > 0) {
		buf_append(&text, line, (size_t)n);
		found |= policy_line_for(line, target, &at);
	}
	fclose(fp);
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		int a, v;

		if (set) {
			char name[64];

			snprintf(name, sizeof(name), "%.*s", eq != NULL ? (int)(eq - argv[i]) : 0, argv[i]);
			a = eq == NULL ? PA_POLICY : policy_attr_find(name);
			if (a < 0 || (eq != NULL && a == PA_POLICY))
				keyctl_usage("'%s': not require|encrypt|never or Attribute=value", argv[i]);
			if (!policy_value_parse((enum policy_attr)a, eq == NULL ? argv[i] : eq + 1, &v))
				keyctl_usage("'%s': not a value %s takes", argv[i], policy_attr_name((enum policy_attr)a));
			at.word[a] = policy_value_name((enum policy_attr)a, v);
		} else {
			a = policy_attr_find(argv[i]);
			if (a < 0)
				keyctl_usage("'%s' is not an attribute (Policy, Format, Sign, EncryptToSelf, On-...)", argv[i]);
			at.word[a] = NULL;
		}
	}
	if (!set && argc == 1)
		memset(&at, 0, sizeof(at));
	if (!set && !found)
		keyctl_die("%s: no Policy line for %s", path, target);
	newline = format_line(target, &at);
	/* The target's first Policy line is replaced by the merged one; the others go. */
	buf_init(&out);
	for (const char *p = text.data != NULL ? text.data : ""; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
		char *l = xstrndup(p, len);
		struct attrs ignore;

		memset(&ignore, 0, sizeof(ignore));
		if (policy_line_for(l, target, &ignore)) {
			if (!placed && newline != NULL)
				buf_appends(&out, newline);
			placed = true;
		} else {
			buf_appends(&out, l);
			if (nl == NULL)
				buf_appends(&out, "\n");
		}
		free(l);
		p += len;
	}
	if (!placed && newline != NULL)
		buf_appends(&out, newline);
	check = config_parse(path, out.data != NULL ? out.data : "", out.len, &err);
	if (check == NULL)
		keyctl_die("not changed: the result would not be valid: %s", err.msg);
	config_free(check);
	write_atomically(path, &out);
	if (newline != NULL)
		printf("%s: %s", path, newline);
	else
		printf("%s: no Policy line for %s any more\n", path, target);
	reload_milter(cfg);
	free(newline);
	free(line);
	buf_release(&text);
	buf_release(&out);
}

int
keyctl_policy(struct config *cfg, int argc, char **argv)
{
	if (argc < 2)
		keyctl_usage("policy needs show, set or unset");
	if (strcmp(argv[1], "show") == 0) {
		if (argc != 3)
			keyctl_usage("policy show needs exactly one ADDRESS");
		show(cfg, argv[2]);
		return 0;
	}
	if (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "unset") == 0) {
		bool set = argv[1][0] == 's';

		if (argc < 3 || (set && argc < 4))
			keyctl_usage("policy %s needs a TARGET%s", argv[1], set ? " and what to set" : "");
		if (strcmp(cfg->path, "(defaults)") == 0)
			keyctl_die("no configuration file to edit: give it with -c");
		edit(cfg, cfg->path, set, argc - 2, argv + 2);
		return 0;
	}
	keyctl_usage("unknown policy command '%s' (show, set, unset)", argv[1]);
}
