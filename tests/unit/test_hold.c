/*
 * test_hold - On-KeyNotFound hold without an MTA: the milter's hold (the
 * record first, every recipient out, HoldAddress in, quarantine; a failure
 * leaves no record and temp-fails), a resubmitted copy held again under its
 * own record, and lib/held.c's release, return and notices with a recording
 * MailCommand and a fixed clock.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "dispatch.h"
#include "held.h"
#include "helpers.h"
#include "hold.h"
#include "message.h"
#include "notice.h"
#include "outbound.h"
#include "util.h"

#define NOW ((time_t)1790000000)
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* The file's text, or NULL when there is none. */
static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b);
	buf_appends(&b, "");
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return b.data;
}

static void
touch(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fclose(f);
	free(path);
}

static void
untouch(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);

	unlink(path);
	free(path);
}

static struct message *
new_message(struct milter_fixture *fx, const char *sender, const char *rcpts, const char *release)
{
	struct message *m = message_new(fx->cfg, sender, true, true);
	char *copy = xstrdup(rcpts), *save = NULL;

	message_set_queue_id(m, "QID1");
	for (char *r = strtok_r(copy, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save))
		assert_true(message_add_rcpt(m, fx->cfg, r, NULL));
	free(copy);
	if (release != NULL)
		message_add_header(m, HOLD_RELEASE_FIELD, release);
	message_add_header(m, "From", "alice@a.test");
	message_add_header(m, "X-Cables", "forged");
	message_add_header(m, "Subject", "hello");
	message_add_body(m, "Hello Carol.\r\nPLAINTEXT-MARKER\r\n", 32);
	return m;
}

static void
run(struct milter_fixture *fx, struct message *m, struct outcome *out)
{
	outbound_plan(m, &fx->env, out);
	assert_int_equal(out->verdict, VERDICT_CONTINUE);
	dispatch_eom(m, &fx->env, &fx->fake.mta, out);
}

static size_t
held_rows(struct milter_fixture *fx, struct held_record **list)
{
	struct held_record *l;
	size_t n;

	assert_int_equal(keystore_held_list(fx->ks, false, NOW, &l, &n, NULL), CABLES_OK);
	if (list != NULL)
		*list = l;
	else
		held_list_release(l, n);
	return n;
}

static void
test_keyless_require_recipient_is_held_with_its_recipients_replaced(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\nHoldAddress held@a.test\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>,<dan@c.test>", NULL);
	struct held_record *list, full;
	struct outcome out;
	uint8_t *plain;
	size_t plain_len;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_MODIFIED);
	assert_int_equal(out.cls, CLASS_HELD);
	assert_string_equal(out.what, "held");
	assert_non_null(strstr(out.detail, "no usable S/MIME certificate for carol@c.test"));
	/* Our forged field goes, every recipient goes, HoldAddress comes, then the quarantine. */
	assert_non_null(strstr(fx->fake.ops.data, "chg X-Cables 1"));
	assert_non_null(strstr(fx->fake.ops.data, "del <carol@c.test>\ndel <dan@c.test>\naddrcpt <held@a.test>\n"
	    "quarantine Cables: held for encryption keys (cables-keyctl held show "));
	/* The quarantined copy is a stub: no word of the message (postsuper -H delivers it to HoldAddress). */
	assert_non_null(strstr(fx->fake.ops.data, "chg Subject 1 Message held by Cables for encryption keys\n"));
	assert_non_null(strstr(fx->fake.ops.data, "chg Content-Type 1 text/plain; charset=us-ascii\n"));
	assert_null(strstr(fx->fake.body.data, "PLAINTEXT-MARKER"));
	assert_null(strstr(fx->fake.ops.data, "hello"));
	assert_int_equal(held_rows(fx, &list), 1);
	assert_non_null(strstr(fx->fake.body.data, list[0].id));
	assert_string_equal(list[0].sender, "alice@a.test");
	assert_string_equal(list[0].recipients, "carol@c.test\ndan@c.test\n");
	assert_non_null(strstr(list[0].waiting, "carol@c.test\tno usable S/MIME certificate: "));
	assert_non_null(strstr(list[0].waiting, "dan@c.test\t"));
	assert_string_equal(list[0].queue_id, "QID1");
	assert_string_equal(list[0].state, "held");
	assert_int_equal(list[0].next_try, NOW);	/* keyd looks at once */
	assert_int_equal(list[0].notify, 1);
	assert_int_equal(strlen(list[0].token), KEYSTORE_HELD_TOKEN_LEN);
	assert_non_null(strstr(out.detail, list[0].id));
	assert_int_equal(keystore_held_get(fx->ks, list[0].id, true, &full, NULL), CABLES_OK);
	/* Sealed in the store: keyd, which reads the same table, sees none of it. */
	assert_int_equal(full.sealed, 1);
	assert_null(memmem(full.message, full.message_len, "PLAINTEXT-MARKER", 16));
	assert_null(memmem(full.message, full.message_len, "hello", 5));
	/* The message as it came, but for our fields, for whoever has the key. */
	assert_int_equal(held_unseal(hold_message_key, &(struct hold_keysrc){ NULL, fx->seal_key }, &full, &plain,
	    &plain_len, NULL), CABLES_OK);
	assert_memory_equal(plain, "From: alice@a.test\r\nSubject: hello\r\n\r\nHello Carol.\r\nPLAINTEXT-MARKER\r\n",
	    plain_len);
	seal_free_secret(plain, plain_len);
	/* Moved to a record with other recipients (an attacker's), it does not open. */
	free(full.recipients);
	full.recipients = xstrdup("mallory@evil.test\n");
	assert_int_equal(held_unseal(hold_message_key, &(struct hold_keysrc){ NULL, fx->seal_key }, &full, &plain,
	    &plain_len, NULL), CABLES_ERR_CRYPTO);
	assert_null(plain);
	held_record_release(&full);
	held_list_release(list, 1);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_no_hold_without_the_mta_or_a_sender(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct outcome out;

	(void)state;
	/* An MTA that does not let the milter add recipients: temp-failed, as before hold. */
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_string_equal(out.rcode, "451");
	assert_non_null(strstr(out.detail, "not held (the MTA does not let the milter change recipients"));
	assert_int_equal(held_rows(fx, NULL), 0);
	message_free(m);
	/* The null sender: nobody to tell or return it to. */
	fake_mta_allow_hold(&fx->fake);
	m = new_message(fx, "", "<carol@c.test>", NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_non_null(strstr(out.detail, "not held (the null sender"));
	assert_int_equal(held_rows(fx, NULL), 0);
	message_free(m);
	/* On-KeyNotFound tempfail: no hold. */
	milter_fixture_free(fx);
	fx = milter_fixture_new("DefaultPolicy require\nOn-KeyNotFound tempfail\n", NOW);
	fake_mta_allow_hold(&fx->fake);
	m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	run(fx, m, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_int_equal(held_rows(fx, NULL), 0);
	message_free(m);
	milter_fixture_free(fx);
}

/*
 * A sender or recipient MailCommand refuses (notice_address_ok) would make
 * every resubmission and return fail after the client got 250: temp-failed.
 */
static void
test_no_hold_for_an_address_mail_command_refuses(void **state)
{
	static const struct {
		const char *sender, *rcpts;
	} cases[] = {
		{ "-oQ/tmp@a.test", "<carol@c.test>" },
		{ "alice@a.test", "<-oQ/tmp@c.test>" },
		{ "alice@a.test", "<carol@c.test>,<\"dave x\"@c.test>" },
	};
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct outcome out;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct message *m = new_message(fx, cases[i].sender, cases[i].rcpts, NULL);

		run(fx, m, &out);
		assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
		assert_non_null(strstr(out.detail, "could not be given to MailCommand"));
		assert_int_equal(held_rows(fx, NULL), 0);
		message_free(m);
	}
	milter_fixture_free(fx);
}

/* HoldMax*: the key store is bounded; over a limit a message is temp-failed, not held. */
static void
test_hold_limits_temp_fail_over_them(void **state)
{
	static const struct {
		const char *config, *limit;
	} cases[] = {
		{ "HoldMaxMessagesPerSender 1\n", "HoldMaxMessagesPerSender" },
		{ "HoldMaxMessages 1\n", "HoldMaxMessages messages" },
		{ "HoldMaxBytesPerSender 10\n", "HoldMaxBytesPerSender" },
		{ "HoldMaxBytes 10\n", "HoldMaxBytes" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		char *config = xasprintf("DefaultPolicy require\n%s", cases[i].config);
		struct milter_fixture *fx = milter_fixture_new(config, NOW);
		struct message *m;
		struct outcome out;

		fake_mta_allow_hold(&fx->fake);
		m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
		run(fx, m, &out);
		message_free(m);
		if (strstr(cases[i].config, "Bytes") == NULL) {
			/* The first fits. */
			assert_int_equal(out.verdict, VERDICT_MODIFIED);
			m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
			run(fx, m, &out);
			message_free(m);
		}
		assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
		assert_string_equal(out.rcode, "451");
		assert_non_null(strstr(out.detail, cases[i].limit));
		assert_int_equal(held_rows(fx, NULL), strstr(cases[i].config, "Bytes") == NULL ? 1 : 0);
		milter_fixture_free(fx);
		free(config);
	}
}

static void
test_a_refused_change_leaves_no_record(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct outcome out;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	outbound_plan(m, &fx->env, &out);
	fx->fake.fail_headers = true;	/* delrcpt and addrcpt refused */
	outbound_finish(m, &fx->env, &fx->fake.mta, &out);
	assert_int_equal(out.verdict, VERDICT_TEMPFAIL);
	assert_int_equal(held_rows(fx, NULL), 0);
	message_free(m);
	milter_fixture_free(fx);
}

static void
test_a_resubmitted_copy_is_held_again_under_its_record(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct held_record *list, full;
	struct outcome out;
	char *release, *forged, *stored, *old, *moved, token[KEYSTORE_HELD_TOKEN_LEN + 1];

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	m->auth_login = xstrdup("alice");
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	list[0].notified = 1;
	strlcpy_c(list[0].state, "released", sizeof(list[0].state));
	assert_int_equal(keystore_held_update(fx->ks, &list[0], NULL), CABLES_OK);
	/* The token the milter's release thread puts in the field: only it can make it (heldseal.h). */
	assert_int_equal(keystore_held_get(fx->ks, list[0].id, true, &full, NULL), CABLES_OK);
	assert_string_equal(full.auth_login, "alice");
	assert_int_equal(held_release_token(hold_message_key, &(struct hold_keysrc){ NULL, fx->seal_key }, &full,
	    (long long)NOW - 60, token, NULL), CABLES_OK);
	assert_string_not_equal(token, full.token);
	release = xasprintf(" %s %lld %s", list[0].id, (long long)NOW - 60, token);
	forged = xasprintf(" %s %lld %032d", list[0].id, (long long)NOW - 60, 7);
	/* The row's own token is what keyd can read: it makes no release. */
	stored = xasprintf(" %s %lld %s", list[0].id, (long long)NOW - 60, list[0].token);
	/* A real token, but made more than an hour ago (or another time put in the field): no release. */
	assert_int_equal(held_release_token(hold_message_key, &(struct hold_keysrc){ NULL, fx->seal_key }, &full,
	    (long long)NOW - HELD_RELEASE_VALID - 1, token, NULL), CABLES_OK);
	old = xasprintf(" %s %lld %s", list[0].id, (long long)NOW - HELD_RELEASE_VALID - 1, token);
	moved = xasprintf(" %s %lld %s", list[0].id, (long long)NOW - 30, token);
	held_record_release(&full);
	/* The copy keyd resubmitted finds carol keyless again: the same record, no new notice. */
	m = new_message(fx, "alice@a.test", "<carol@c.test>", release);
	run(fx, m, &out);
	assert_int_equal(out.cls, CLASS_HELD);
	assert_non_null(strstr(out.detail, "held again"));
	assert_non_null(strstr(fx->fake.ops.data, "chg X-Cables-Release 1"));
	message_free(m);
	held_list_release(list, 1);
	assert_int_equal(held_rows(fx, &list), 1);
	assert_string_equal(list[0].state, "held");
	assert_int_equal(list[0].notified, 1);
	assert_true(list[0].next_try > NOW);
	held_list_release(list, 1);
	/* The released copy (through pickup, no login of its own) counts as its original's submission: signed as alice. */
	m = new_message(fx, "alice@a.test", "<carol@c.test>", release);
	hold_release_check(m, &fx->env);
	assert_true(m->release_valid);
	assert_true(m->auth_from_release);
	assert_string_equal(m->auth_login, "alice");
	message_free(m);
	/* The row's stored token, an expired one, one moved to another time: no release, no login. */
	m = new_message(fx, "alice@a.test", "<carol@c.test>", stored);
	hold_release_check(m, &fx->env);
	assert_false(m->release_valid);
	assert_null(m->auth_login);
	message_free(m);
	m = new_message(fx, "alice@a.test", "<carol@c.test>", old);
	hold_release_check(m, &fx->env);
	assert_false(m->release_valid);
	message_free(m);
	m = new_message(fx, "alice@a.test", "<carol@c.test>", moved);
	hold_release_check(m, &fx->env);
	assert_false(m->release_valid);
	message_free(m);
	/* keyd changes the row's login (to sign as someone else): the token no longer matches. */
	assert_int_equal(held_rows(fx, &list), 1);
	assert_int_equal(keystore_held_get(fx->ks, list[0].id, true, &full, NULL), CABLES_OK);
	held_list_release(list, 1);
	held_record_release(&full);
	{
		/* Straight into the row, as keyd's handle on the store could. */
		char *path = xasprintf("%s/keys.db", fx->dir);
		sqlite3 *db;

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "UPDATE held SET auth_login = 'bob'", NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_changes(db), 1);
		sqlite3_close(db);
		free(path);
	}
	m = new_message(fx, "alice@a.test", "<carol@c.test>", release);
	hold_release_check(m, &fx->env);
	assert_false(m->release_valid);
	assert_null(m->auth_login);
	message_free(m);
	/* A field with a wrong token (a local user's forgery) is no resubmission: a record of its own. */
	m = new_message(fx, "alice@a.test", "<carol@c.test>", forged);
	run(fx, m, &out);
	assert_null(strstr(out.detail, "held again"));
	assert_int_equal(held_rows(fx, NULL), 2);
	message_free(m);
	/* Nor is the right token from another sender. */
	m = new_message(fx, "mallory@a.test", "<carol@c.test>", release);
	run(fx, m, &out);
	assert_null(strstr(out.detail, "held again"));
	assert_int_equal(held_rows(fx, NULL), 3);
	message_free(m);
	free(release);
	free(forged);
	free(stored);
	free(old);
	free(moved);
	milter_fixture_free(fx);
}

/* --- lib/held.c, with a MailCommand that records what it is given --- */

struct mailer {
	char *dir;
	char *command;
	bool key;		/* what has_key answers */
	unsigned int asked;
	struct hold_keysrc keys;	/* the held messages' keys, from the fixture's store key */
};

/* What milter/hold.c does with a resubmitted copy that finds a key missing again: a plain update. */
static void
milter_rehold(struct keystore *ks, const char *id)
{
	struct held_record h;

	assert_int_equal(keystore_held_get(ks, id, false, &h, NULL), CABLES_OK);
	strlcpy_c(h.state, "held", sizeof(h.state));
	h.action[0] = '\0';
	strlcpy_c(h.queue_id, "QID2", sizeof(h.queue_id));
	h.next_try = NOW + 3600;
	assert_int_equal(keystore_held_update(ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
}

static bool
fake_has_key(void *arg, const char *addr, char *why, size_t why_len)
{
	struct mailer *ml = arg;

	(void)addr;
	ml->asked++;
	if (!ml->key)
		snprintf(why, why_len, "none: SMIMEA: secure-none");
	return ml->key;
}

/* The milter's key for a held message, from the fixture's store key. */
static cables_status
open_key(void *arg, const char *id, const uint8_t *salt, uint8_t *key, struct cables_err *err)
{
	struct mailer *ml = arg;

	return hold_message_key(&ml->keys, id, salt, key, err);
}

/* The next MailCommand (the resubmission) finds the milter has held id's copy again meanwhile, as it would. */
static void
rehold_during_mail_command(struct milter_fixture *fx, const char *id)
{
	char *path = xasprintf("%s/rehold", fx->dir);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "%s\n", id);
	fclose(f);
	free(path);
}

static struct mailer *
mailer_new(struct milter_fixture *fx)
{
	struct mailer *ml = xcalloc(1, sizeof(*ml));
	char *script = xasprintf("%s/mailer", fx->dir);
	FILE *f = fopen(script, "w");

	assert_non_null(f);
	/* With a file "rehold" naming a record: the milter's re-hold of it lands while MailCommand runs. */
	fprintf(f, "#!/bin/sh\nd=%s\nn=$(ls $d/in.* 2>/dev/null | wc -l)\nprintf '%%s\\n' \"$@\" > $d/args.$n\n"
	    "cat > $d/in.$n\n[ -e $d/fail ] && exit 75\n"
	    "[ -e $d/rehold ] && python3 $d/rehold.py $d/keys.db $(cat $d/rehold) && rm -f $d/rehold\nexit 0\n", fx->dir);
	fclose(f);
	chmod(script, 0755);
	ml->command = xasprintf("%s -X x", script);
	free(script);
	script = xasprintf("%s/rehold.py", fx->dir);
	assert_non_null(f = fopen(script, "w"));
	fputs("import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n"
	    "db.execute(\"UPDATE held SET state = 'held', action = '', queue_id = 'QID2', next_try = next_try + 3600, "
	    "claimed_until = 0 WHERE id = ?\", (sys.argv[2],))\ndb.commit()\n", f);
	fclose(f);
	ml->dir = fx->dir;
	ml->keys.seal_key = fx->seal_key;
	free(script);
	return ml;
}

static char *
mailed(const struct mailer *ml, const char *what, int n)
{
	char *path = xasprintf("%s/%s.%d", ml->dir, what, n), *text;

	text = read_text(path);
	free(path);
	return text;
}

static void
test_held_release_return_and_notices(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env env = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, open_key, ml, 0 };
	struct held_record *list, h;
	struct held_result res;
	struct outcome out;
	struct cables_err err;
	char id[KEYSTORE_HELD_ID_LEN + 1], *args, *in, *first, token[KEYSTORE_HELD_TOKEN_LEN + 1];

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	strlcpy_c(id, list[0].id, sizeof(id));
	held_list_release(list, 1);
	/* The field's token is the one only the milter makes (not the row's, which keyd can read). */
	assert_int_equal(keystore_held_get(fx->ks, id, true, &h, NULL), CABLES_OK);
	assert_int_equal(held_release_token(hold_message_key, &ml->keys, &h, (long long)NOW + 60, token, NULL),
	    CABLES_OK);
	held_record_release(&h);
	first = xasprintf("X-Cables-Release: %s %lld %s\r\n", id, (long long)NOW + 60, token);

	/* First look: no key; the sender is told once; the next look in 5 s. */
	assert_int_equal(held_try(&env, id, NOW, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_WAITING);
	assert_non_null(strstr(res.detail, "still waiting: carol@c.test (none: SMIMEA: secure-none)"));
	args = mailed(ml, "args", 0);
	assert_string_equal(args, "-X\nx\n-i\n-f\n<>\n--\nalice@a.test\n");
	in = mailed(ml, "in", 0);
	assert_non_null(strstr(in, "Subject: Your message waits for an encryption key\n"));
	assert_non_null(strstr(in, "Auto-Submitted: auto-generated\n"));
	assert_non_null(strstr(in, "Content-Type: text/plain; charset=utf-8\n"));
	assert_non_null(strstr(in, "carol@c.test: no usable S/MIME certificate"));
	assert_non_null(strstr(in, "never be sent unencrypted"));
	free(args);
	free(in);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_int_equal(h.notified, 1);
	assert_int_equal(h.tries, 1);
	assert_int_equal(h.next_try, NOW + 5);
	held_record_release(&h);
	assert_int_equal(held_try(&env, id, NOW + 5, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_WAITING);
	assert_null(mailed(ml, "in", 1));	/* no second notice */
	assert_int_equal(held_backoff(2), 10);
	assert_int_equal(held_backoff(30), 600);

	/* The key is there: keyd hands it to the milter, and mails nothing itself. */
	ml->key = true;
	assert_int_equal(held_try(&env, id, NOW + 20, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	assert_null(mailed(ml, "in", 1));
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.action, "release");
	held_record_release(&h);
	/* Handed over, it is no longer keyd's to look at. */
	assert_int_equal(held_try(&env, id, NOW + 20, &res, &err), CABLES_ERR_NOTFOUND);
	/* The milter's MailCommand fails: still held, the action kept, tried again later, nothing lost. */
	touch(fx->dir, "fail");
	assert_int_equal(held_act_due(&env, id, NOW + 20, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_FAILED);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.state, "held");
	assert_string_equal(h.action, "release");
	assert_true(h.next_try > NOW + 20);
	assert_non_null(strstr(h.last_error, "exited with status 75"));
	held_record_release(&h);
	untouch(fx->dir, "fail");
	/* Not due yet: the milter leaves it. */
	assert_int_equal(held_act_due(&env, id, NOW + 21, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);

	/* Then it goes: resubmitted with the original envelope, our field first; the sender told. */
	assert_int_equal(held_act_due(&env, id, NOW + 60, &res, &err), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RELEASED);
	args = mailed(ml, "args", 2);
	assert_string_equal(args, "-X\nx\n-i\n-f\nalice@a.test\n--\ncarol@c.test\n");
	in = mailed(ml, "in", 2);
	assert_true(strncmp(in, first, strlen(first)) == 0);
	assert_non_null(strstr(in, "PLAINTEXT-MARKER"));
	free(args);
	free(in);
	in = mailed(ml, "in", 3);
	assert_non_null(strstr(in, "Subject: Your message has been sent, encrypted\n"));
	free(in);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.state, "released");
	held_record_release(&h);
	/* A released message is not held: neither tried nor returned again. */
	assert_int_equal(held_try(&env, id, NOW + 61, &res, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(held_return(&env, id, &res, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(held_act_due(&env, id, NOW + 61, &res, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(keystore_held_prune(fx->ks, NOW + 100, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_ERR_NOTFOUND);
	free(first);
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

static void
test_hold_time_returns_a_dsn_naming_the_recipient(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\nHoldNotice no\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env env = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, open_key, ml, 0 };
	struct held_record *list;
	struct held_result res;
	struct outcome out;
	char id[KEYSTORE_HELD_ID_LEN + 1], *args, *in;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	assert_int_equal(list[0].notify, 0);	/* HoldNotice no */
	strlcpy_c(id, list[0].id, sizeof(id));
	held_list_release(list, 1);
	assert_int_equal(held_try(&env, id, NOW, &res, NULL), CABLES_OK);
	assert_null(mailed(ml, "in", 0));	/* not told */
	/* HoldTime passes: keys not even looked for; the milter sends the DSN, the record goes; never to carol. */
	ml->asked = 0;
	assert_int_equal(held_try(&env, id, NOW + 3600, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RETURN);
	assert_int_equal(ml->asked, 0);
	assert_null(mailed(ml, "in", 0));
	assert_int_equal(held_act_due(&env, id, NOW + 3600, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RETURNED);
	args = mailed(ml, "args", 0);
	assert_string_equal(args, "-X\nx\n-i\n-f\n<>\n--\nalice@a.test\n");
	in = mailed(ml, "in", 0);
	assert_non_null(strstr(in, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(in, "Final-Recipient: rfc822; carol@c.test\nAction: failed\nStatus: 5.7.1\n"
	    "Diagnostic-Code: X-Cables; none: SMIMEA: secure-none\n"));
	assert_non_null(strstr(in, "within HoldTime"));
	assert_non_null(strstr(in, "Content-Type: message/rfc822\n\nFrom: alice@a.test\r\n"));
	free(args);
	free(in);
	assert_int_equal(held_rows(fx, NULL), 0);
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

/*
 * Several keyds on one store, and keyctl held: a record another process
 * has claimed is left alone by held_try, held_try_due and held_return
 * (nothing mailed, nothing changed); keyd's loop leaves one not due.
 */
static void
test_a_claimed_record_is_left_to_its_claimant(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env env = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, open_key, ml, 0 };
	struct held_record *list, h;
	struct held_result res;
	struct outcome out;
	char id[KEYSTORE_HELD_ID_LEN + 1];
	bool claimed;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	strlcpy_c(id, list[0].id, sizeof(id));
	held_list_release(list, 1);
	ml->key = true;
	/* Another keyd took it, for a minute of the real clock too (held_return's). */
	assert_int_equal(keystore_held_claim(fx->ks, id, NOW, true, time(NULL) + 60, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	assert_int_equal(held_try_due(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);
	assert_int_equal(held_try(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);
	assert_int_equal(held_return(&env, id, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);
	/* And the milter leaves a record without an action (keyd's to look at). */
	assert_int_equal(held_act_due(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);
	assert_null(mailed(ml, "in", 0));
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.state, "held");
	assert_int_equal(h.tries, 0);
	/* It ends its look (an update): the next due look is this one's, and it releases. */
	h.next_try = NOW + 5;
	assert_int_equal(keystore_held_update(fx->ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
	assert_int_equal(held_try_due(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);	/* not due */
	assert_int_equal(held_try_due(&env, id, NOW + 5, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	assert_int_equal(held_try_due(&env, id, NOW + 6, &res, NULL), CABLES_ERR_NOTFOUND);
	/* Another milter took the release: this one leaves it. */
	assert_int_equal(keystore_held_claim(fx->ks, id, NOW + 6, HELD_DUE_ACTIONS, time(NULL) + 60, &claimed, NULL),
	    CABLES_OK);
	assert_true(claimed);
	assert_int_equal(held_act_due(&env, id, NOW + 6, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TAKEN);
	assert_null(mailed(ml, "in", 1));	/* in.0 is keyd's held notice; nothing resubmitted */
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

static void
test_notice_refuses_what_is_not_an_address(void **state)
{
	struct cables_err err;
	static const char *const bad[] = { "-oQ/tmp", "", "a b@c.test", "a\n@c.test" };

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		assert_int_equal(notice_send("/bin/true", bad[i], "s", "t", &err), CABLES_ERR_ARG);
	assert_int_equal(notice_command_check("sendmail", NULL), CABLES_ERR_ARG);
	assert_int_equal(notice_command_check("/usr/sbin/sendmail -C /etc/postfix", NULL), CABLES_OK);
	assert_int_equal(notice_send("/nonexistent/sendmail", "a@b.test", "s", "t", &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/sendmail"));
}

/* keyd's has_key: a key of the Format the recipient's policy asks for, not expired (as the milter's find_key). */
static void
test_only_a_key_the_milter_would_use_counts(void **state)
{
	static const struct {
		enum keyd_format format;
		long long expires;
		enum key_format want;
		bool usable;
	} cases[] = {
		{ KEYD_FORMAT_PGP, 0, FORMAT_SMIME, false },	/* Format=smime, an OpenPGP key only */
		{ KEYD_FORMAT_SMIME, 0, FORMAT_PGP, false },
		{ KEYD_FORMAT_SMIME, 0, FORMAT_SMIME, true },
		{ KEYD_FORMAT_PGP, 0, FORMAT_AUTO, true },
		{ KEYD_FORMAT_SMIME, NOW - 1, FORMAT_AUTO, false },	/* expired */
		{ KEYD_FORMAT_PGP, NOW + 1, FORMAT_PGP, true },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct keyd_key k = { .format = cases[i].format, .expires = cases[i].expires };

		assert_int_equal(held_key_usable(&k, cases[i].want, NOW), cases[i].usable);
	}
}

/* keyd's and keyctl's check on a whole reply: Policy b.test require Format=smime and an OpenPGP key only. */
static void
test_a_found_key_of_another_format_is_no_key(void **state)
{
	struct keyd_key pgp = { .format = KEYD_FORMAT_PGP };
	struct keyd_result r = { .address = "bob@b.test", .outcome = KEYD_OUTCOME_FOUND, .keys = &pgp, .nkeys = 1 };
	struct keyd_lookup_reply reply = { &r, 1 };
	char why[200] = "";

	(void)state;
	assert_false(held_reply_has_key(&reply, FORMAT_SMIME, NOW, why, sizeof(why)));
	assert_non_null(strstr(why, "no usable S/MIME key"));
	assert_true(held_reply_has_key(&reply, FORMAT_AUTO, NOW, why, sizeof(why)));
	r.outcome = KEYD_OUTCOME_NONE;
	assert_false(held_reply_has_key(&reply, FORMAT_AUTO, NOW, why, sizeof(why)));
}

/*
 * The milter holds the resubmitted copy again while keyd releases it: keyd's
 * "released" must not overwrite that (a released record is pruned, the
 * message lost), and the sender is told "sent" at most once.
 */
static void
test_a_copy_held_again_during_its_release_stays_held(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env env = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, open_key, ml, 0 };
	struct held_record *list, h;
	struct held_result res;
	struct outcome out;
	char id[KEYSTORE_HELD_ID_LEN + 1], *in;

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	strlcpy_c(id, list[0].id, sizeof(id));
	held_list_release(list, 1);
	ml->key = true;
	/* in.0 the held notice, in.1 the resubmission; the re-hold lands before the milter writes "released". */
	assert_int_equal(held_try(&env, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	rehold_during_mail_command(fx, id);
	assert_int_equal(held_act_due(&env, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RELEASED);
	assert_non_null(strstr(res.detail, "held again"));
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.state, "held");
	assert_string_equal(h.queue_id, "QID2");
	held_record_release(&h);
	assert_null(mailed(ml, "in", 2));	/* no "sent" notice */
	/* Released for good: told once; held again after that and released again: not told twice. */
	assert_int_equal(held_try(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	assert_int_equal(held_act_due(&env, id, NOW + 1, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RELEASED);
	in = mailed(ml, "in", 3);
	assert_non_null(in);
	assert_non_null(strstr(in, "Subject: Your message has been sent, encrypted\n"));
	free(in);
	milter_rehold(fx->ks, id);
	assert_int_equal(held_try(&env, id, NOW + 2, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	assert_int_equal(held_act_due(&env, id, NOW + 2, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RELEASED);
	assert_non_null(in = mailed(ml, "in", 4));	/* the resubmission */
	free(in);
	assert_null(mailed(ml, "in", 5));
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.state, "released");
	assert_true(h.tries >= 2);	/* every release counts */
	held_record_release(&h);
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

/* A row as cables-keyd could write it straight into the store: in the clear, with whatever it likes. */
static void
keyd_row(struct milter_fixture *fx, const char *id, const char *token, const char *action, const char *login)
{
	static const char text[] = "From: ceo@a.test\r\nSubject: pay\r\n\r\nPay mallory.\r\n";
	struct held_record h;

	memset(&h, 0, sizeof(h));
	strlcpy_c(h.id, id, sizeof(h.id));
	strlcpy_c(h.token, token, sizeof(h.token));
	strlcpy_c(h.queue_id, "QK", sizeof(h.queue_id));
	h.sender = xstrdup("ceo@a.test");
	h.recipients = xstrdup("bank@c.test\n");
	h.waiting = xstrdup("bank@c.test\tno key\n");
	h.message = (uint8_t *)xstrdup(text);
	h.message_len = sizeof(text) - 1;
	h.auth_login = xstrdup(login);
	strlcpy_c(h.state, "held", sizeof(h.state));
	strlcpy_c(h.action, action, sizeof(h.action));
	h.held_at = NOW;
	h.next_try = NOW;
	assert_int_equal(keystore_held_add(fx->ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
}

/*
 * What keyd (which writes the store) could put there is not trusted: a row
 * in the clear is sent by nothing (the milter refuses it, keyd hands it
 * not over, held return refuses it), a copy naming it is no release, and
 * a sealed row's own token column never reaches a header field.
 */
static void
test_rows_keyd_could_have_written_are_not_trusted(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env milter = { fx->ks, ml->command, "mx.a.test", 3600, NULL, NULL, open_key, ml, 0 };
	struct held_env keyd = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, NULL, NULL, 0 };
	struct held_record h, *list;
	struct held_result res;
	struct outcome out;
	struct cables_err err;
	char *release, *in, id[KEYSTORE_HELD_ID_LEN + 1];

	(void)state;
	ml->key = true;
	/* An unsealed row keyd marked for release: the milter does not send it. */
	keyd_row(fx, "00000000000000f1", "0123456789abcdef0123456789abcdef", "release", "ceo@a.test");
	assert_int_equal(held_act_due(&milter, "00000000000000f1", NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_FAILED);
	assert_non_null(strstr(res.detail, "in the clear"));
	/* Nor does keyd hand one over (it says why), nor may the administrator return it. */
	keyd_row(fx, "00000000000000f2", "0123456789abcdef0123456789abcdef", "", "ceo@a.test");
	assert_int_equal(held_try(&keyd, "00000000000000f2", NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_WAITING);
	assert_non_null(strstr(res.detail, "never sent"));
	assert_int_equal(keystore_held_get(fx->ks, "00000000000000f2", false, &h, NULL), CABLES_OK);
	assert_string_equal(h.action, "");
	held_record_release(&h);
	assert_int_equal(held_return(&keyd, "00000000000000f2", &res, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "never sent"));
	assert_null(mailed(ml, "in", 0));
	/* A copy naming it with its stored token is no release: no login taken from it. */
	release = xasprintf(" %s %lld %s", "00000000000000f2", (long long)NOW, "0123456789abcdef0123456789abcdef");
	message_free(m);
	m = new_message(fx, "ceo@a.test", "<bank@c.test>", release);
	hold_release_check(m, &fx->env);
	assert_false(m->release_valid);
	assert_null(m->auth_login);
	message_free(m);
	free(release);
	/* A sealed row whose token column keyd filled with a header line of its own: not in the copy. */
	m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 3);
	for (size_t i = 0; i < 3; i++)
		if (list[i].sealed)
			strlcpy_c(id, list[i].id, sizeof(id));
	held_list_release(list, 3);
	assert_int_equal(held_try(&keyd, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	{
		char *path = xasprintf("%s/keys.db", fx->dir);
		sqlite3 *db;

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "UPDATE held SET token = 'x' || char(13, 10) || 'Reply-To: m@evil.test' "
		    "WHERE sealed = 1", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		free(path);
	}
	assert_int_equal(held_act_due(&milter, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_RELEASED);
	in = mailed(ml, "in", 1);	/* in.0: the held notice */
	assert_non_null(in);
	assert_null(strstr(in, "Reply-To"));
	assert_true(strncmp(in, "X-Cables-Release: ", 18) == 0);
	free(in);
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

/*
 * A release the milter cannot make: one it cannot read (no key, or larger
 * than any message it takes) fails and is kept; past HoldTime it becomes a
 * return; the administrator may return it before that.
 */
static void
test_a_release_the_milter_cannot_make_is_kept_then_returned(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("DefaultPolicy require\nHoldNotice no\n", NOW);
	struct message *m = new_message(fx, "alice@a.test", "<carol@c.test>", NULL);
	struct mailer *ml = mailer_new(fx);
	struct held_env keyd = { fx->ks, ml->command, "mx.a.test", 3600, fake_has_key, ml, NULL, NULL, 0 };
	struct held_env nokey = { fx->ks, ml->command, "mx.a.test", 3600, NULL, NULL, NULL, NULL, 0 };
	struct held_env small = { fx->ks, ml->command, "mx.a.test", 3600, NULL, NULL, open_key, ml, 16 };
	struct held_record *list, h;
	struct held_result res;
	struct outcome out;
	char id[KEYSTORE_HELD_ID_LEN + 1];

	(void)state;
	fake_mta_allow_hold(&fx->fake);
	run(fx, m, &out);
	message_free(m);
	assert_int_equal(held_rows(fx, &list), 1);
	strlcpy_c(id, list[0].id, sizeof(id));
	held_list_release(list, 1);
	ml->key = true;
	assert_int_equal(held_try(&keyd, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RELEASE);
	/* A process without the key cannot open it: kept, with the action, for a later try. */
	assert_int_equal(held_act_due(&nokey, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_FAILED);
	/* Larger than a message the milter takes (keyd could make a row huge): not even read. */
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_true(h.stored_len > 16);
	assert_string_equal(h.action, "release");
	h.next_try = NOW;
	assert_int_equal(keystore_held_update(fx->ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
	assert_int_equal(held_act_due(&small, id, NOW, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_FAILED);
	assert_non_null(strstr(res.detail, "not read"));
	assert_null(mailed(ml, "in", 0));
	/* Still failing when HoldTime has passed: it becomes a return, as the sender was told. */
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	h.next_try = NOW + 3600;
	assert_int_equal(keystore_held_update(fx->ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
	assert_int_equal(held_act_due(&small, id, NOW + 3600, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_FAILED);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.action, "expire");
	/* And the administrator may take back any handed-over record to return it now. */
	strlcpy_c(h.action, "release", sizeof(h.action));
	assert_int_equal(keystore_held_update(fx->ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
	assert_int_equal(held_return(&keyd, id, &res, NULL), CABLES_OK);
	assert_int_equal(res.outcome, HELD_TO_RETURN);
	assert_int_equal(keystore_held_get(fx->ks, id, false, &h, NULL), CABLES_OK);
	assert_string_equal(h.action, "return");
	held_record_release(&h);
	free(ml->command);
	free(ml);
	milter_fixture_free(fx);
}

/* A MailCommand that never ends (a sendmail retrying a read-only maildrop) is killed at the deadline. */
static void
test_a_mail_command_that_hangs_is_killed_at_the_deadline(void **state)
{
	char dir[] = "/tmp/test_hold.XXXXXX", *script, *command;
	struct cables_err err;
	struct timespec t0, t1;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	script = xasprintf("%s/hang", dir);
	f = fopen(script, "w");
	assert_non_null(f);
	/* Its child keeps the group alive too: the whole group goes. */
	fprintf(f, "#!/bin/sh\nsleep 30 &\nwait\n");
	fclose(f);
	chmod(script, 0755);
	command = xasprintf("%s", script);
	notice_set_deadline(1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(notice_send(command, "a@b.test", "s", "t", &err), CABLES_ERR_IO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	notice_set_deadline(0);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	assert_non_null(strstr(err.msg, "did not finish"));
	unlink(script);
	rmdir(dir);
	free(script);
	free(command);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyless_require_recipient_is_held_with_its_recipients_replaced),
		cmocka_unit_test(test_no_hold_without_the_mta_or_a_sender),
		cmocka_unit_test(test_no_hold_for_an_address_mail_command_refuses),
		cmocka_unit_test(test_hold_limits_temp_fail_over_them),
		cmocka_unit_test(test_a_refused_change_leaves_no_record),
		cmocka_unit_test(test_a_resubmitted_copy_is_held_again_under_its_record),
		cmocka_unit_test(test_held_release_return_and_notices),
		cmocka_unit_test(test_hold_time_returns_a_dsn_naming_the_recipient),
		cmocka_unit_test(test_a_claimed_record_is_left_to_its_claimant),
		cmocka_unit_test(test_notice_refuses_what_is_not_an_address),
		cmocka_unit_test(test_a_mail_command_that_hangs_is_killed_at_the_deadline),
		cmocka_unit_test(test_only_a_key_the_milter_would_use_counts),
		cmocka_unit_test(test_a_found_key_of_another_format_is_no_key),
		cmocka_unit_test(test_a_copy_held_again_during_its_release_stays_held),
		cmocka_unit_test(test_rows_keyd_could_have_written_are_not_trusted),
		cmocka_unit_test(test_a_release_the_milter_cannot_make_is_kept_then_returned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
