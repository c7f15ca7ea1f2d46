/* message - the per-message context of the milter; see message.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "authres.h"
#include "handler.h"
#include "message.h"
#include "mime.h"
#include "util.h"

const char *const outer_field_names[OUTER_COUNT] = {
	"X-Cables", "X-Cables-Reinjected", "X-Cables-Release", "Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "In-Reply-To",
	"References",
};

struct message *
message_new(const struct config *cfg, const char *sender, bool sender_local, bool client_trusted)
{
	struct message *m = xcalloc(1, sizeof(*m));

	m->sender = xstrdup(sender);
	m->sender_local = sender_local || client_trusted;
	m->client_trusted = client_trusted;
	m->body = spool_new(cfg->temp_dir, SPOOL_MEMORY_LIMIT, cfg->max_message_size);
	m->headers = spool_new(cfg->temp_dir, SPOOL_MEMORY_LIMIT, cfg->max_message_size);
	m->body_status = CABLES_OK;
	m->authserv_id = cfg->authserv_id != NULL ? cfg->authserv_id : "localhost";
	buf_init(&m->visible);
	return m;
}

void
message_free(struct message *m)
{
	if (m == NULL)
		return;
	free(m->auth_login);
	free(m->queue_id);
	free(m->sender);
	free(m->mail_esmtp);
	for (size_t i = 0; i < m->ngroups; i++)
		free(m->groups[i].members);
	free(m->groups);
	for (size_t i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].arg);
		free(m->rcpts[i].addr);
		free(m->rcpts[i].esmtp);
		free(m->rcpts[i].norm);
		handler_key_free(m->rcpts[i].key);
		free(m->rcpts[i].why_no_key);
	}
	free(m->rcpts);
	for (size_t i = 0; i < m->ncontent; i++) {
		free(m->content[i].name);
		free(m->content[i].value);
	}
	free(m->content);
	free(m->from);
	free(m->marker);
	free(m->release);
	free(m->authres_ours);
	spool_free(m->headers);
	buf_release(&m->visible);
	handler_key_free(m->signers[0]);
	handler_key_free(m->signers[1]);
	spool_free(m->body);
	free(m);
}

void
message_set_queue_id(struct message *m, const char *qid)
{
	if (qid == NULL || (m->queue_id != NULL && strcmp(m->queue_id, qid) == 0))
		return;
	free(m->queue_id);
	m->queue_id = xstrdup(qid);
}

/* The ESMTP parameters of args whose names are in keep, space-separated; NULL if none. */
static char *
keep_esmtp(char **args, const char *const *keep)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		for (size_t k = 0; keep[k] != NULL; k++) {
			size_t n = strlen(keep[k]);

			if (str_nieq(args[i], keep[k], n) && (args[i][n] == '=' || args[i][n] == '\0') &&
			    strpbrk(args[i], " \t\r\n") == NULL) {
				buf_printf(&b, "%s%s", b.len > 0 ? " " : "", args[i]);
				break;
			}
		}
	return b.data;
}

void
message_set_mail_esmtp(struct message *m, char **args)
{
	static const char *const keep[] = { "RET", "ENVID", "BODY", "SMTPUTF8", NULL };

	free(m->mail_esmtp);
	m->mail_esmtp = keep_esmtp(args, keep);
}

bool
message_add_rcpt(struct message *m, const struct config *cfg, const char *arg, char **args)
{
	static const char *const keep[] = { "NOTIFY", "ORCPT", NULL };
	char *addr = addr_from_envelope(arg);
	struct rcpt *r;

	char *norm;

	if (addr == NULL)
		return false;
	norm = addr_normalize(addr, &cfg->addr);
	/* An address whose domain has no one form (a literal, IDNA refuses) is neither local nor remote. */
	if (norm == NULL && (strchr(addr, '@') != NULL || addr[0] == '\0')) {
		free(addr);
		return false;
	}
	m->rcpts = xreallocarray(m->rcpts, m->nrcpts + 1, sizeof(*m->rcpts));
	r = &m->rcpts[m->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = addr;
	r->arg = xstrdup(arg);
	r->esmtp = keep_esmtp(args, keep);
	r->norm = norm;
	/* A recipient without a domain (postmaster) is qualified with the MTA's own domain: local. */
	r->local = r->norm == NULL || domain_list_match(&cfg->local_domains, addr_domain(r->norm));
	return true;
}

void
message_drop_last_rcpt(struct message *m)
{
	struct rcpt *r;

	if (m->nrcpts == 0)
		return;
	r = &m->rcpts[--m->nrcpts];
	free(r->arg);
	free(r->addr);
	free(r->esmtp);
	free(r->norm);
	handler_key_free(r->key);
	free(r->why_no_key);
	memset(r, 0, sizeof(*r));
}

/* Append v with every line break made CRLF (MTAs pass folded values with bare LF). */
static void
append_crlf(struct buf *out, const char *v)
{
	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '\n' && (p == v || p[-1] != '\r'))
			buf_append(out, "\r", 1);
		buf_append(out, p, 1);
	}
}

void
message_add_header(struct message *m, const char *name, const char *value)
{
	struct header *h;
	unsigned int index = 1;

	/* Every field, for copies of the message (a spool: headers can be large). */
	if (m->body_status == CABLES_OK) {
		struct buf field;

		buf_init(&field);
		buf_appends(&field, name);
		buf_appends(&field, m->header_leadspc ? ":" : ": ");
		append_crlf(&field, value);
		buf_append(&field, "\r\n", 2);
		m->body_status = spool_append(m->headers, field.data, field.len, &m->body_err);
		buf_release(&field);
	}
	if (str_ieq(name, "To") || str_ieq(name, "Cc") || str_ieq(name, "Resent-To") || str_ieq(name, "Resent-Cc")) {
		buf_appends(&m->visible, value);
		buf_appends(&m->visible, ",");
	}
	if (str_ieq(name, "Authentication-Results")) {
		m->nauthres++;
		if (authres_claims(value, strlen(value), m->authserv_id)) {
			m->authres_ours = xreallocarray(m->authres_ours, m->nauthres_ours + 1, sizeof(*m->authres_ours));
			m->authres_ours[m->nauthres_ours++] = m->nauthres;
		}
	}
	for (int i = 0; i < OUTER_COUNT; i++)
		if (str_ieq(name, outer_field_names[i])) {
			if (i == OUTER_FROM && m->outer[i] == 0)
				m->from = xstrdup(value);
			if (i == OUTER_MARKER && m->outer[i] == 0)
				m->marker = xstrdup(value);
			if (i == OUTER_RELEASE && m->outer[i] == 0)
				m->release = xstrdup(value);
			m->outer[i]++;
		}
	if (!mime_is_content_header(name, strlen(name)))
		return;
	for (size_t i = 0; i < m->ncontent; i++)
		if (str_ieq(m->content[i].name, name))
			index++;
	m->content = xreallocarray(m->content, m->ncontent + 1, sizeof(*m->content));
	h = &m->content[m->ncontent++];
	h->name = xstrdup(name);
	h->value = xstrdup(value);
	h->index = index;
}

void
message_add_body(struct message *m, const void *p, size_t n)
{
	if (m->body_status != CABLES_OK)
		return;
	m->body_status = spool_append(m->body, p, n, &m->body_err);
}

enum fail_action
fail_action_combine(enum fail_action a, enum fail_action b)
{
	static const int rank[] = {
		[ACTION_TEMPFAIL] = 4, [ACTION_REJECT] = 3, [ACTION_HOLD] = 2, [ACTION_QUARANTINE] = 1, [ACTION_ACCEPT] = 0,
	};

	return rank[a] >= rank[b] ? a : b;
}

void
message_combine_actions(struct message *m, const struct config *cfg)
{
	m->on_internal_error = ACTION_ACCEPT;
	for (size_t i = 0; i < m->nrcpts; i++)
		m->on_internal_error = fail_action_combine(m->on_internal_error,
		    (enum fail_action)policy_get(&cfg->policy, m->rcpts[i].norm, PA_ON_INTERNAL_ERROR, NULL));
	if (m->nrcpts == 0)
		m->on_internal_error = (enum fail_action)cfg->policy.dflt[PA_ON_INTERNAL_ERROR];
}

unsigned int
message_forged_fields(const struct message *m)
{
	return m->outer[OUTER_X_CABLES] + m->outer[OUTER_RELEASE] + (unsigned int)m->nauthres_ours;
}

bool
message_authres_is_ours(const struct message *m, unsigned int index)
{
	for (size_t i = 0; i < m->nauthres_ours; i++)
		if (m->authres_ours[i] == index)
			return true;
	return false;
}

const char *
message_header_value(const struct message *m, const char *name)
{
	for (size_t i = 0; i < m->ncontent; i++)
		if (str_ieq(m->content[i].name, name))
			return m->content[i].value;
	return NULL;
}

void
message_content_head(const struct message *m, struct buf *out)
{
	message_content_head_ct(m, NULL, out);
}

void
message_content_head_ct(const struct message *m, const char *content_type, struct buf *out)
{
	bool have_ct = false;

	for (size_t i = 0; i < m->ncontent; i++) {
		bool ct = content_type != NULL && str_ieq(m->content[i].name, "Content-Type") && m->content[i].index == 1;

		if (ct && have_ct)
			continue;
		buf_appends(out, m->content[i].name);
		buf_appends(out, m->header_leadspc ? ":" : ": ");
		append_crlf(out, ct ? content_type : m->content[i].value);
		buf_append(out, "\r\n", 2);
		have_ct |= ct;
	}
	if (content_type != NULL && !have_ct) {
		buf_appends(out, m->header_leadspc ? "Content-Type:" : "Content-Type: ");
		append_crlf(out, content_type);
		buf_append(out, "\r\n", 2);
	}
	buf_append(out, "\r\n", 2);
}

void
message_find_bcc(struct message *m, const struct config *cfg)
{
	char **visible = NULL;
	size_t n = m->visible.len > 0 ? mime_addresses(m->visible.data, &visible) : 0;

	for (size_t k = 0; k < n; k++) {
		char *norm = addr_normalize(visible[k], &cfg->addr);

		free(visible[k]);
		visible[k] = norm != NULL ? norm : xstrdup("");
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		struct rcpt *r = &m->rcpts[i];

		r->bcc = true;
		for (size_t k = 0; k < n && r->bcc; k++)
			r->bcc = r->norm == NULL || strcmp(visible[k], r->norm) != 0;
	}
	for (size_t k = 0; k < n; k++)
		free(visible[k]);
	free(visible);
}
