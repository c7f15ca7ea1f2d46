/* domainpolicy - the _cables-policy TXT record; see domainpolicy.h. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "domainpolicy.h"
#include "util.h"

/* The quoted strings of rdata, unescaped and joined, into text (NUL-terminated); false if malformed. */
static bool
unquote(const char *rdata, size_t len, char *text, size_t room, const char **why)
{
	size_t i = 0, n = 0;

	while (i < len) {
		if (rdata[i] == ' ' || rdata[i] == '\t') {
			i++;
			continue;
		}
		if (rdata[i++] != '"')
			return *why = "not a quoted string", false;
		for (;;) {
			unsigned char ch;

			if (i >= len)
				return *why = "a string without its closing quote", false;
			ch = (unsigned char)rdata[i++];
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (i >= len)
					return *why = "a string without its closing quote", false;
				if (rdata[i] >= '0' && rdata[i] <= '9') {
					unsigned int v = 0;

					for (int d = 0; d < 3; d++, i++) {
						if (i >= len || rdata[i] < '0' || rdata[i] > '9')
							return *why = "a bad \\DDD escape", false;
						v = v * 10 + (unsigned int)(rdata[i] - '0');
					}
					if (v > 255)
						return *why = "a bad \\DDD escape", false;
					ch = (unsigned char)v;
				} else {
					ch = (unsigned char)rdata[i++];
				}
			}
			if ((ch < 0x20 && ch != '\t') || ch > 0x7e)
				return *why = "a character that is not printable ASCII", false;
			if (n + 1 >= room)
				return *why = "too long", false;
			text[n++] = (char)ch;
		}
	}
	text[n] = '\0';
	return true;
}

static char *
trim_blanks(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* "name=value": name lowercase letters and digits, value printable without blanks; both non-empty. */
static bool
split_tag(char *tag, char **name, char **value)
{
	char *eq = strchr(tag, '=');

	if (eq == NULL || eq == tag || eq[1] == '\0')
		return false;
	*eq = '\0';
	*name = tag;
	*value = eq + 1;
	return strspn(*name, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(*name) &&
	    strpbrk(*value, " \t=") == NULL;
}

cables_status
domainpolicy_parse(const char *rdata, size_t len, enum domainpolicy *out, struct cables_err *err)
{
	char text[DOMAINPOLICY_TEXT_MAX + 1], *p, *tag, *name, *value, seen[DOMAINPOLICY_TEXT_MAX + 2] = ";";
	const char *why = NULL;
	bool first = true, have_p = false;

	if (!unquote(rdata, len, text, sizeof(text), &why))
		return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: %s", why);
	if (text[0] == '\0')
		return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: an empty record");
	p = text;
	while (p != NULL) {
		char key[DOMAINPOLICY_TEXT_MAX + 3];

		tag = p;
		if ((p = strchr(p, ';')) != NULL)
			*p++ = '\0';
		tag = trim_blanks(tag);
		if (tag[0] == '\0') {
			/* Only a final ';' may leave an empty tag. */
			if (p == NULL && !first)
				break;
			return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: an empty tag");
		}
		if (!split_tag(tag, &name, &value))
			return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: '%.32s' is not name=value", tag);
		if (first) {
			if (strcmp(name, "v") != 0 || strcmp(value, "cables1") != 0)
				return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: does not begin with v=cables1");
			first = false;
			continue;
		}
		snprintf(key, sizeof(key), ";%s;", name);
		if (strstr(seen, key) != NULL || strcmp(name, "v") == 0)
			return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: tag %.32s given twice", name);
		strlcpy_c(seen + strlen(seen), key + 1, sizeof(seen) - strlen(seen));
		if (strcmp(name, "p") == 0) {
			if (strcmp(value, "require") != 0)
				return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: p=%.32s is not require", value);
			have_p = true;
		}
	}
	if (!have_p)
		return cables_fail(err, CABLES_ERR_SYNTAX, "_cables-policy: no p= tag");
	*out = DOMAINPOLICY_REQUIRE;
	return CABLES_OK;
}
