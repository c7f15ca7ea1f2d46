/* protect - header protection of outbound copies; see protect.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "policy.h"
#include "protect.h"

#define LEGACY_SCAN (64 * 1024)	/* body bytes hp_legacy_inserts() looks at */

/* How strict a policy is: off < none < baseline < shy. */
static int
hcp_rank(enum hp_policy p)
{
	return p == HP_POLICY_OFF ? -1 : (int)p;
}

/* The strictest HeaderProtection of the members. */
static enum hp_policy
group_hcp(const struct message *m, const struct config *cfg, const size_t *members, size_t n)
{
	enum hp_policy hcp = HP_POLICY_OFF;

	for (size_t k = 0; k < n; k++) {
		enum hp_policy p = (enum hp_policy)policy_get(&cfg->policy, m->rcpts[members[k]].norm,
		    PA_HEADER_PROTECTION, NULL);

		if (hcp_rank(p) > hcp_rank(hcp))
			hcp = p;
	}
	return hcp;
}

/* Read all of sp (at most max bytes) into out. */
static cables_status
read_spool(const struct spool *sp, size_t max, struct buf *out, struct cables_err *err)
{
	if (sp != NULL && spool_size(sp) > max)
		return cables_fail(err, CABLES_ERR_TOOBIG, "the header section is over %zu bytes", max);
	return sp != NULL ? spool_read_buf(sp, 0, max, out, err) : CABLES_OK;
}

/* The legacy display insertions for the body, when the policy hid a user-facing field. */
static cables_status
plan_legacy(struct protect *pr, const struct message *m, bool *top, struct cables_err *err)
{
	const char *ct = message_header_value(m, "Content-Type");
	struct buf first;
	cables_status st;

	*top = false;
	if (pr->p.hidden == 0 || pr->p.legacy.len == 0)
		return CABLES_OK;
	buf_init(&first);
	if ((st = spool_read_buf(m->body, 0, LEGACY_SCAN, &first, err)) == CABLES_OK)
		pr->nins = hp_legacy_inserts(first.data != NULL ? first.data : "", first.len, ct,
		    message_header_value(m, "Content-Transfer-Encoding"),
		    message_header_value(m, "Content-Disposition"), &pr->p.legacy, top, pr->ins, PROTECT_INSERTS_MAX);
	if (first.data != NULL)
		OPENSSL_cleanse(first.data, first.len);
	buf_release(&first);
	if (st != CABLES_OK)
		return st;
	if (*top)
		pr->legacy = hp_legacy_kind(ct, message_header_value(m, "Content-Transfer-Encoding"), NULL) ==
		    HP_LEGACY_HTML ? "html" : "text";
	else if (pr->nins > 0)
		pr->legacy = "parts";
	return CABLES_OK;
}

cables_status
protect_plan(struct protect *pr, const struct message *m, const struct milter_env *env, const size_t *members,
    size_t n, bool client_signed, struct cables_err *err)
{
	const char *ct = message_header_value(m, "Content-Type");
	const char *plain = m->header_leadspc ? " text/plain; charset=us-ascii" : "text/plain; charset=us-ascii";
	struct cables_err why;
	char *marked;
	bool top;
	cables_status st;

	memset(pr, 0, sizeof(*pr));
	buf_init(&pr->head);
	buf_init(&pr->outer_head);
	pr->hcp = group_hcp(m, env->cfg, members, n);
	if (pr->hcp == HP_POLICY_OFF)
		return CABLES_OK;
	if (client_signed) {
		snprintf(pr->skipped, sizeof(pr->skipped), "the sender's client signed the content");
		return CABLES_OK;
	}
	if ((marked = hp_content_type(ct != NULL ? ct : plain, false, &why)) == NULL) {
		snprintf(pr->skipped, sizeof(pr->skipped), "the content has header protection of its own");
		return CABLES_OK;
	}
	free(marked);
	if ((st = read_spool(m->headers, HP_HEAD_MAX, &pr->outer_head, err)) != CABLES_OK)
		return st;
	if ((st = hp_protect(pr->outer_head.data, pr->outer_head.len, pr->hcp, &pr->p, err)) != CABLES_OK)
		return st;
	if ((st = plan_legacy(pr, m, &top, err)) != CABLES_OK)
		return st;
	if ((marked = hp_content_type(ct != NULL ? ct : plain, top, err)) == NULL)
		return CABLES_ERR_INTERNAL;
	buf_append(&pr->head, pr->p.inner.data, pr->p.inner.len);
	message_content_head_ct(m, marked, &pr->head);
	free(marked);
	pr->on = true;
	return CABLES_OK;
}

void
protect_entity(const struct protect *pr, const struct message *m, struct buf *plain_head, struct entity_src *src)
{
	off_t at = 0;

	entity_src_init(src);
	if (!pr->on) {
		message_content_head(m, plain_head);
		entity_src_mem(src, plain_head->data, plain_head->len);
		entity_src_spool(src, m->body, 0, -1);
		return;
	}
	entity_src_mem(src, pr->head.data, pr->head.len);
	for (size_t i = 0; i < pr->nins; i++) {
		if ((off_t)pr->ins[i].at > at)
			entity_src_spool(src, m->body, at, (off_t)pr->ins[i].at);
		entity_src_mem(src, pr->ins[i].text.data, pr->ins[i].text.len);
		at = (off_t)pr->ins[i].at;
	}
	entity_src_spool(src, m->body, at, -1);
}

int
protect_outer(const struct protect *pr, const struct mta *mta)
{
	return pr->on ? protect_edits_apply(&pr->p.outer, mta) : 0;
}

int
protect_edits_apply(const struct hp_edits *edits, const struct mta *mta)
{
	for (size_t i = 0; i < edits->n; i++) {
		const struct hp_edit *e = &edits->v[i];
		char *v = e->op != HP_OP_DELETE ? mta_value(mta, e->value) : NULL;
		int rc;

		if (e->op == HP_OP_ADD)
			rc = mta->addheader(mta->ctx, e->name, v);
		else
			rc = mta->chgheader(mta->ctx, e->name, (int)e->index, v);
		free(v);
		if (rc != 0)
			return -1;
	}
	return 0;
}

cables_status
protect_headers(struct spool **out, const struct protect *pr, const char *tmpdir, struct cables_err *err)
{
	struct buf head;
	struct spool *sp;
	cables_status st;

	*out = NULL;
	if (!pr->on)
		return CABLES_OK;
	buf_init(&head);
	if ((st = hp_edits_apply(pr->outer_head.data, pr->outer_head.len, &pr->p.outer, &head, err)) == CABLES_OK) {
		sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
		if ((st = spool_append(sp, head.data, head.len, err)) == CABLES_OK)
			*out = sp;
		else
			spool_free(sp);
	}
	buf_release(&head);
	return st;
}

void
protect_note(const struct protect *pr, char *out, size_t len)
{
	if (pr->on)
		snprintf(out, len, " hp=%s hidden=%u%s%s", hp_policy_name(pr->hcp), pr->p.hidden,
		    pr->legacy != NULL ? " legacy=" : "", pr->legacy != NULL ? pr->legacy : "");
	else if (pr->skipped[0] != '\0')
		snprintf(out, len, " hp=skipped (%s)", pr->skipped);
	else
		out[0] = '\0';
}

void
protect_release(struct protect *pr)
{
	hp_protect_release(&pr->p);
	hp_inserts_release(pr->ins, pr->nins);
	pr->nins = 0;
	if (pr->head.data != NULL)
		OPENSSL_cleanse(pr->head.data, pr->head.len);
	buf_release(&pr->head);
	buf_release(&pr->outer_head);
}
