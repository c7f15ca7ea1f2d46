/*
 * fuzz_keydproto - the cables-keyd request parser (lib/keydproto.c): any
 * bytes as one request.  A parse must either fail with a reason or give
 * a lookup with 1..KEYD_ADDRESSES_MAX valid addresses, stats or list
 * without any, an import with one address, a format and base64 data, or a
 * delete with one address; and a sanitized value must hold no control
 * character.  The same bytes as a lookup reply: a parse must fail with a
 * reason or give results whose words are known and whose reasons hold no
 * newline, and formatting them again must parse to the same results.  The
 * same bytes as an import and as a delete reply: a parse fails with a
 * reason or gives fields keyd could have sent, which format and parse back
 * to the same.  The same bytes as a stats reply: its samples, formatted as
 * metric= lines again, parse to the same samples.  And a request that
 * parses must be one the typed request formatters (the clients' side)
 * format again, to a request that parses
 * to the same: what keyd reads, a client can say, and the reverse.  The
 * same bytes as a check reply (the milter's RCPT-time question): a parse
 * fails with a reason or gives states keyd could have sent, which format
 * and parse back to the same.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "base64.h"
#include "fuzz.h"
#include "keydproto.h"
#include "util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* The bytes as a lookup reply: parsed, formatted again, parsed again to the same. */
static void
check_reply(const uint8_t *data, size_t size)
{
	struct keyd_lookup_reply r, again;
	struct cables_err err;
	struct buf out;

	if (keyd_lookup_reply_parse((const char *)data, size, &r, &err) != CABLES_OK) {
		if (err.msg[0] == '\0')
			abort();
		keyd_lookup_reply_release(&r);
		return;
	}
	buf_init(&out);
	for (size_t i = 0; i < r.n; i++) {
		if (strchr(r.results[i].reason, '\n') != NULL || strcmp(keyd_outcome_name(r.results[i].outcome), "?") == 0)
			abort();
		for (size_t k = 0; k < r.results[i].nkeys; k++)
			keyd_key_format(&out, &r.results[i].keys[k]);
		keyd_result_encrypting_format(&out, r.results[i].address, r.results[i].outcome, r.results[i].encrypting,
		    r.results[i].since, r.results[i].reason);
	}
	buf_appends(&out, "");
	if (keyd_lookup_reply_parse(out.data, out.len, &again, &err) != CABLES_OK || again.n != r.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (again.results[i].outcome != r.results[i].outcome || again.results[i].nkeys != r.results[i].nkeys ||
		    again.results[i].encrypting != r.results[i].encrypting || again.results[i].since != r.results[i].since)
			abort();
	keyd_lookup_reply_release(&again);
	keyd_lookup_reply_release(&r);
	buf_release(&out);
}

/* The bytes as an import reply and as a delete reply: parsed, formatted again, parsed again to the same. */
static void
check_import_delete_replies(const uint8_t *data, size_t size)
{
	struct keyd_import_reply ir, ir2;
	struct cables_err err;
	struct buf out;
	size_t n, n2;

	buf_init(&out);
	if (keyd_import_reply_parse((const char *)data, size, &ir, &err) == CABLES_OK) {
		if (!addr_valid(ir.address) || ir.fingerprint[0] == '\0' ||
		    strspn(ir.fingerprint, "0123456789abcdefABCDEF") != strlen(ir.fingerprint) ||
		    strcmp(keyd_format_name(ir.format), "?") == 0)
			abort();
		keyd_import_reply_format(&out, &ir);
		if (keyd_import_reply_parse(out.data, out.len, &ir2, &err) != CABLES_OK || memcmp(&ir, &ir2, sizeof(ir)) != 0)
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	buf_reset(&out);
	if (keyd_delete_reply_parse((const char *)data, size, &n, &err) == CABLES_OK) {
		keyd_delete_reply_format(&out, n);
		if (keyd_delete_reply_parse(out.data, out.len, &n2, &err) != CABLES_OK || n2 != n)
			abort();
	} else if (err.msg[0] == '\0' || n != 0) {
		abort();
	}
	buf_release(&out);
}

/* The bytes as a check reply: parsed, formatted again, parsed again to the same. */
static void
check_check_reply(const uint8_t *data, size_t size)
{
	struct keyd_check_reply r, again;
	struct cables_err err;
	struct buf out;

	if (keyd_check_reply_parse((const char *)data, size, &r, &err) != CABLES_OK) {
		if (err.msg[0] == '\0')
			abort();
		keyd_check_reply_release(&r);
		return;
	}
	buf_init(&out);
	for (size_t i = 0; i < r.n; i++) {
		const struct keyd_check *c = &r.checks[i];

		if (strchr(c->reason, '\n') != NULL || strcmp(keyd_check_state_name(c->state), "?") == 0 || c->retry < 0 ||
		    c->address[0] == '\0' || strchr(c->address, ' ') != NULL)
			abort();
		keyd_check_format(&out, c);
	}
	buf_appends(&out, "");
	if (keyd_check_reply_parse(out.data, out.len, &again, &err) != CABLES_OK || again.n != r.n)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (again.checks[i].state != r.checks[i].state || again.checks[i].retry != r.checks[i].retry ||
		    strcmp(again.checks[i].address, r.checks[i].address) != 0 ||
		    strcmp(again.checks[i].reason, r.checks[i].reason) != 0)
			abort();
	keyd_check_reply_release(&again);
	keyd_check_reply_release(&r);
	buf_release(&out);
}

/* The bytes as a stats reply: the samples it gives, formatted as metric= lines again, parse to the same. */
static void
check_stats_reply(const uint8_t *data, size_t size)
{
	struct buf samples, out, again;
	struct cables_err err;

	buf_init(&samples);
	buf_init(&out);
	buf_init(&again);
	if (keyd_stats_reply_parse((const char *)data, size, &samples, &err) == CABLES_OK) {
		if (memchr(samples.data != NULL ? samples.data : "", '\r', samples.len) != NULL)
			abort();
		keyd_stats_metrics_format(&out, samples.data, samples.len);
		if (keyd_stats_reply_parse(out.data, out.len, &again, &err) != CABLES_OK || again.len != samples.len ||
		    (samples.len > 0 && memcmp(again.data, samples.data, samples.len) != 0))
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	buf_release(&samples);
	buf_release(&out);
	buf_release(&again);
}

/* base64 text (as a request's data= lines joined) decoded; false when it is not whole base64. */
static bool
decode(const struct buf *b64, struct buf *bin)
{
	struct b64_decoder d;

	b64_decoder_init(&d);
	return b64_decode_update(&d, (const uint8_t *)b64->data, b64->len, bin, NULL) == CABLES_OK &&
	    b64_decode_final(&d, NULL) == CABLES_OK;
}

/* A request keyd took, formatted again by the clients' formatters: it must format, and parse to the same. */
static void
check_request_formats(const struct keyd_request *req)
{
	struct keyd_request again;
	enum keyd_format format = KEYD_FORMAT_SMIME;
	struct cables_err err;
	struct buf out, bin, bin2;
	cables_status st = CABLES_OK;

	buf_init(&out);
	buf_init(&bin);
	buf_init(&bin2);
	switch (req->type) {
	case KEYD_LOOKUP:
		st = keyd_lookup_request_format(&out, (const char *const *)req->addresses, req->naddresses, &err);
		break;
	case KEYD_CHECK:
		st = keyd_check_request_format(&out, (const char *const *)req->addresses, req->naddresses, &err);
		break;
	case KEYD_DELETE:
		st = keyd_delete_request_format(&out, req->addresses[0], req->fingerprint, &err);
		break;
	case KEYD_LIST:
		keyd_list_request_format(&out);
		break;
	case KEYD_STATS:
		keyd_stats_request_format(&out);
		break;
	case KEYD_IMPORT:
		if (!decode(&req->data, &bin) || bin.len == 0)
			goto out;	/* keyd refuses it when it decodes the data */
		if (!keyd_format_parse(req->format, &format))
			abort();
		st = keyd_import_request_format(&out, req->addresses[0], format, req->force,
		    (const unsigned char *)bin.data, bin.len, &err);
		break;
	}
	if (st != CABLES_OK || out.len < 2 || keyd_request_parse(out.data, out.len - 1, &again, &err) != CABLES_OK)
		abort();
	if (again.type != req->type || again.naddresses != req->naddresses || again.force != req->force ||
	    (again.fingerprint == NULL) != (req->fingerprint == NULL) ||
	    (req->fingerprint != NULL && strcmp(again.fingerprint, req->fingerprint) != 0) ||
	    (again.format == NULL) != (req->format == NULL) || (req->format != NULL && strcmp(again.format, req->format) != 0))
		abort();
	for (size_t i = 0; i < req->naddresses; i++)
		if (strcmp(again.addresses[i], req->addresses[i]) != 0)
			abort();
	if (req->type == KEYD_IMPORT && (!decode(&again.data, &bin2) || bin2.len != bin.len ||
	    memcmp(bin2.data, bin.data, bin.len) != 0))
		abort();
	keyd_request_release(&again);
out:
	buf_release(&out);
	buf_release(&bin);
	buf_release(&bin2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyd_request req;
	struct cables_err err;
	char *copy;

	if (keyd_request_parse((const char *)data, size, &req, &err) == CABLES_OK) {
		if ((req.type == KEYD_LOOKUP || req.type == KEYD_CHECK) &&
		    (req.naddresses == 0 || req.naddresses > KEYD_ADDRESSES_MAX))
			abort();
		if ((req.type == KEYD_STATS || req.type == KEYD_LIST) && req.naddresses != 0)
			abort();
		if (req.type == KEYD_IMPORT && (req.naddresses != 1 || req.format == NULL || req.data.len == 0 ||
		    strspn(req.data.data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != req.data.len))
			abort();
		if (req.type == KEYD_DELETE && (req.naddresses != 1 || req.format != NULL))
			abort();
		for (size_t i = 0; i < req.naddresses; i++)
			if (!addr_valid(req.addresses[i]))
				abort();
		check_request_formats(&req);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	keyd_request_release(&req);
	check_reply(data, size);
	check_check_reply(data, size);
	check_stats_reply(data, size);
	check_import_delete_replies(data, size);
	copy = xstrndup((const char *)data, size);
	keyd_sanitize(copy);
	for (const char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			abort();
	free(copy);
	return 0;
}
