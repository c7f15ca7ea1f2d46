/*
 * policy - the policy table: per-address settings, global → domain →
 * address, the most specific wins, attribute by attribute.
 *
 * An entry names an address ("bob@b.test"), a domain ("b.test") or a
 * domain's subdomains (".b.test") and sets some attributes; the global
 * defaults set all of them.  For an address, the value of an attribute
 * comes from the most specific entry that sets it (address, then exact
 * domain, then the longest matching ".suffix"), else from the default.
 * Recipient attributes are looked up by recipient, sender attributes
 * (Sign, EncryptToSelf) by sender.
 *
 * Entries are matched against normalised addresses (addr.h): address
 * entries must be normalised with the same options (policy_table_normalize)
 * before lookups.  The table owns its strings; policy_table_release()
 * frees them.
 */
#ifndef CABLES_POLICY_H
#define CABLES_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "status.h"

enum enc_policy {
	POLICY_NEVER,		/* never encrypt */
	POLICY_ENCRYPT,		/* encrypt when the recipient has a usable key */
	POLICY_REQUIRE,		/* must encrypt: no key means temp-fail or reject */
};

/* What to do with a message when something goes wrong (On-* attributes). */
enum fail_action {
	ACTION_TEMPFAIL,	/* 4xx: the MTA keeps the message and retries */
	ACTION_REJECT,		/* 5xx: the sender gets a bounce */
	ACTION_ACCEPT,		/* pass the message as it is (never plaintext to a require recipient) */
	ACTION_QUARANTINE,	/* accept into the MTA's hold queue (On-DecryptError only) */
	ACTION_HOLD,		/* accept and hold until the keys are found (On-KeyNotFound only; doc/hold.md) */
};

enum key_format { FORMAT_SMIME, FORMAT_PGP, FORMAT_AUTO };

/* ForwardSecrecy: encrypt to the recipient's epoch key (doc/key-exchange.md, "Forward secrecy"). */
enum fs_policy {
	FS_REQUIRE,		/* an epoch key or nothing: without one the message waits (4xx) */
	FS_PREFER,		/* the epoch key when the recipient's domain offers one, else the long-term key */
	FS_OFF,			/* long-term keys only */
};

enum policy_attr {
	PA_POLICY,		/* enum enc_policy */
	PA_FORMAT,		/* enum key_format */
	PA_SIGN,		/* 0/1, by sender */
	PA_SELF,		/* EncryptToSelf 0/1, by sender */
	PA_ON_KEY_NOT_FOUND,	/* tempfail|reject|hold */
	PA_ON_INTERNAL_ERROR,	/* tempfail|reject|accept */
	PA_ON_DECRYPT_ERROR,	/* accept|tempfail|reject|quarantine */
	PA_ON_KEYD_ERROR,	/* accept|tempfail|reject: cables-keyd could not be asked */
	PA_ON_KEY_CHANGE,	/* accept|tempfail|reject: a discovered or harvested key differs from the pinned one */
	PA_HEADER_PROTECTION,	/* enum hp_policy (hp.h): none|baseline|shy|off */
	PA_PADDING,		/* enum pad_mode (pad.h): none|buckets */
	PA_FORWARD_SECRECY,	/* enum fs_policy: require|prefer|off */
	PA_HOLD_NOTICE,		/* 0/1, by sender: tell the sender a message is held, released, returned */
	PA_COUNT
};

struct policy_entry {
	char *match;			/* address, domain or .domain (domains lowercase) */
	int value[PA_COUNT];		/* -1: not set here */
	unsigned int line[PA_COUNT];	/* config line that set it */
};

struct policy_table {
	struct policy_entry *entries;
	size_t count;
	int dflt[PA_COUNT];
	unsigned int dflt_line[PA_COUNT];	/* 0: the built-in default */
};

/* The attribute's name as written in the config ("Format", "On-KeyNotFound"). */
const char *policy_attr_name(enum policy_attr a);
/* Find an attribute by name (case-insensitive); -1 if unknown. */
int policy_attr_find(const char *name);
/* Parse a value word for an attribute ("require", "yes", "quarantine"); false if not allowed. */
bool policy_value_parse(enum policy_attr a, const char *word, int *value);
/* The word of a value ("require", "yes", "tempfail"). */
const char *policy_value_name(enum policy_attr a, int value);
/* The allowed words, for messages ("require, encrypt or never"). */
void policy_value_words(enum policy_attr a, char *out, size_t len);

const char *policy_name(enum enc_policy p);
const char *fail_action_name(enum fail_action a);

/* An empty table with the built-in defaults. */
void policy_table_init(struct policy_table *t);

/*
 * Set attribute a of the entry for match (creating the entry).  match must
 * be a valid address, domain or .domain; the domain is folded to lowercase.
 * Setting an attribute twice for one target is CABLES_ERR_EXISTS naming
 * the first line.
 */
cables_status policy_table_set(struct policy_table *t, const char *match, enum policy_attr a,
    int value, unsigned int line, struct cables_err *err);

/*
 * Bring address entries into the form lookups use (addr_normalize with o).
 * An entry naming a sub-address ("bob+x@b.test") is an error, since lookups
 * never see one; so are two entries that become the same.  On error, *line
 * is the config line of the offending entry.
 */
cables_status policy_table_normalize(struct policy_table *t, const struct addr_opts *o,
    unsigned int *line, struct cables_err *err);

/*
 * The value of attribute a for a normalised address.  When entry is not
 * NULL it is set to the deciding entry, or NULL when the default decided.
 */
int policy_get(const struct policy_table *t, const char *addr, enum policy_attr a,
    const struct policy_entry **entry);

void policy_table_release(struct policy_table *t);

#endif
