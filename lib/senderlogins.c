/* senderlogins - who may sign as a sender address; see senderlogins.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "senderlogins.h"
#include "util.h"

struct sender_login_entry {
	char *key;		/* normalised address, or "@domain" in lowercase */
	char **logins;
	size_t nlogins;
};

struct sender_logins {
	struct sender_login_entry *entries;
	size_t count;
};

#define SENDER_LOGINS_MAX_LINE 4096

void
sender_logins_free(struct sender_logins *map)
{
	if (map == NULL)
		return;
	for (size_t i = 0; i < map->count; i++) {
		for (size_t j = 0; j < map->entries[i].nlogins; j++)
			free(map->entries[i].logins[j]);
		free(map->entries[i].logins);
		free(map->entries[i].key);
	}
	free(map->entries);
	free(map);
}

/* The lookup key of the first column, or NULL when it is neither an address nor "@domain". */
static char *
entry_key(const char *word, const struct addr_opts *o)
{
	char *k;

	if (word[0] == '@') {
		if (!domain_valid(word + 1))
			return NULL;
		k = xstrdup(word);
		str_lower(k);
		return k;
	}
	return addr_normalize(word, o);
}

/* One non-comment line: "ADDRESS LOGIN[,LOGIN...]"; false when malformed. */
static bool
add_line(struct sender_logins *map, char *line, const struct addr_opts *o)
{
	struct sender_login_entry e = { NULL, NULL, 0 };
	char *save = NULL, *w = strtok_r(line, " \t", &save);

	if (w == NULL || (e.key = entry_key(w, o)) == NULL)
		return false;
	for (w = strtok_r(NULL, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
		e.logins = xreallocarray(e.logins, e.nlogins + 1, sizeof(*e.logins));
		e.logins[e.nlogins++] = xstrdup(w);
	}
	if (e.nlogins == 0) {
		free(e.key);
		return false;
	}
	map->entries = xreallocarray(map->entries, map->count + 1, sizeof(*map->entries));
	map->entries[map->count++] = e;
	return true;
}

cables_status
sender_logins_load(struct sender_logins **out, const char *path, const struct addr_opts *o,
    struct cables_err *err)
{
	FILE *fp = fopen(path, "r");
	struct sender_logins *map;
	char line[SENDER_LOGINS_MAX_LINE];
	unsigned int lineno = 0;
	cables_status st;

	*out = NULL;
	if (fp == NULL)
		return cables_fail(err, CABLES_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	map = xcalloc(1, sizeof(*map));
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *s;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: line too long", path, lineno);
			goto fail;
		}
		s = str_trim(line);
		if (s[0] == '\0' || s[0] == '#')
			continue;
		if (!add_line(map, s, o)) {
			st = cables_fail(err, CABLES_ERR_SYNTAX, "%s:%u: not \"ADDRESS LOGIN[,LOGIN...]\"", path, lineno);
			goto fail;
		}
	}
	if (ferror(fp)) {
		st = cables_fail(err, CABLES_ERR_IO, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	*out = map;
	return CABLES_OK;
fail:
	fclose(fp);
	sender_logins_free(map);
	return st;
}

static bool
entry_allows(const struct sender_login_entry *e, const char *login)
{
	for (size_t j = 0; j < e->nlogins; j++)
		if (str_ieq(e->logins[j], login))
			return true;
	return false;
}

bool
sender_logins_allows(const struct sender_logins *map, const char *addr, const char *login)
{
	const char *domain = addr_domain(addr);

	if (map == NULL || login == NULL || login[0] == '\0')
		return false;
	/* The address's own line decides; "@domain" only when it has none (Postfix's order). */
	for (size_t i = 0; i < map->count; i++)
		if (str_ieq(map->entries[i].key, addr))
			return entry_allows(&map->entries[i], login);
	for (size_t i = 0; domain != NULL && i < map->count; i++)
		if (map->entries[i].key[0] == '@' && str_ieq(map->entries[i].key + 1, domain))
			return entry_allows(&map->entries[i], login);
	return false;
}

bool
sender_entitled(const struct sender_logins *map, bool sign_unauthenticated, const char *addr,
    const char *login, char *why, size_t len)
{
	if (login == NULL || login[0] == '\0') {
		if (sign_unauthenticated)
			return true;
		snprintf(why, len, "not authenticated (SignUnauthenticated no)");
		return false;
	}
	if (str_ieq(login, addr) || sender_logins_allows(map, addr, login))
		return true;
	snprintf(why, len, "login %s may not send as %s%s", login, addr,
	    map != NULL ? " (SenderLogins)" : " (no SenderLogins)");
	return false;
}
