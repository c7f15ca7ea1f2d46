/* khsign - keyd's exchange signatures, made by cables-keyholder; see khsign.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/obj_mac.h>

#include "khproto.h"
#include "keydstats.h"
#include "khsign.h"
#include "util.h"

struct khsign {
	char *path;
};

/* The keyholder's answer (counted): the signature and public key, or why not. */
static cables_status
take_answer(const struct kh_reply *rep, const char *domain, uint8_t sig[X_SIG_LEN], uint8_t pub[X_PUB_LEN],
    struct cables_err *err)
{
	keydstats_keyholder(rep->status);
	if (rep->status != KH_OK)
		return cables_fail(err, rep->status == KH_REFUSED ? CABLES_ERR_UNUSABLE : CABLES_ERR_IO,
		    "exchange signature for %s: keyholder says %s (its log says why)", domain, kh_status_name(rep->status));
	if (rep->len != X_SIG_LEN + X_PUB_LEN)
		return cables_fail(err, CABLES_ERR_SYNTAX, "exchange signature: keyholder answered %zu bytes, not %d",
		    rep->len, X_SIG_LEN + X_PUB_LEN);
	memcpy(sig, rep->data, X_SIG_LEN);
	memcpy(pub, rep->data + X_SIG_LEN, X_PUB_LEN);
	return CABLES_OK;
}

/*
 * One request to the keyholder at k's path and its reply; with count, no
 * reply is counted (cables_keyd_keyholder_operations_total is about
 * exchange signatures).
 */
static cables_status
ask(struct khsign *k, const struct kh_request *req, struct kh_reply *rep, bool count, const char *what,
    struct cables_err *err)
{
	uint8_t out[KH_REQUEST_SIZE], in[KH_REPLY_SIZE];
	cables_status st;
	int fd;

	if (kh_request_encode(out, req, err) != CABLES_OK)
		return CABLES_ERR_ARG;
	if ((fd = unix_connect(k->path, 0)) < 0) {
		if (count)
			keydstats_keyholder(KH_STATUS_MAX);
		return cables_fail(err, CABLES_ERR_IO, "%s: keyholder %s: %s", what, k->path, strerror(errno));
	}
	if (!send_fully(fd, out, sizeof(out)) ||
	    !recv_exactly(fd, in, sizeof(in), monotonic_ms() + KHSIGN_TIMEOUT_MS)) {
		if (count)
			keydstats_keyholder(KH_STATUS_MAX);
		st = cables_fail(err, CABLES_ERR_IO, "%s: keyholder %s: no answer", what, k->path);
	} else if (kh_reply_decode(rep, in, err) != CABLES_OK) {
		if (count)
			keydstats_keyholder(KH_STATUS_MAX);	/* a broken reply: as good as none */
		st = CABLES_ERR_IO;
	} else {
		st = CABLES_OK;
	}
	close(fd);
	return st;
}

static cables_status
sign(void *arg, const char *domain, int kind, const uint8_t digest[X_DIGEST_LEN], uint8_t sig[X_SIG_LEN],
    uint8_t pub[X_PUB_LEN], struct cables_err *err)
{
	struct khsign *k = arg;
	struct kh_request req;
	struct kh_reply rep;

	memset(&req, 0, sizeof(req));
	req.op = KH_OP_EXCHANGE_SIGN;
	req.md_nid = NID_sha512;
	memset(req.fingerprint, '0', KH_FPR_LEN);
	/* "@DOMAIN": the frame's address field, which must hold one '@', names the domain signed as. */
	if ((size_t)snprintf(req.address, sizeof(req.address), "@%s", domain) >= sizeof(req.address))
		return cables_fail(err, CABLES_ERR_ARG, "exchange signature: domain %.64s too long", domain);
	req.data[0] = (uint8_t)kind;
	memcpy(req.data + 1, digest, X_DIGEST_LEN);
	req.len = 1 + X_DIGEST_LEN;
	if (ask(k, &req, &rep, true, "exchange signature", err) != CABLES_OK)
		return CABLES_ERR_IO;
	return take_answer(&rep, domain, sig, pub, err);
}

cables_status
khsign_epoch(void *arg, const char *addr, const char *format, uint8_t digest[32], bool *found,
    struct cables_err *err)
{
	struct khsign *k = arg;
	struct kh_request req;
	struct kh_reply rep;

	*found = false;
	memset(&req, 0, sizeof(req));
	req.op = KH_OP_EPOCH_CURRENT;
	req.key = strcmp(format, "pgp") == 0 ? KH_KEY_PGP : KH_KEY_SMIME;
	memset(req.fingerprint, '0', KH_FPR_LEN);
	if ((size_t)snprintf(req.address, sizeof(req.address), "%s", addr) >= sizeof(req.address))
		return cables_fail(err, CABLES_ERR_ARG, "epoch key: address too long");
	req.len = 1;		/* one 0 byte */
	if (ask(k, &req, &rep, false, "epoch key", err) != CABLES_OK)
		return CABLES_ERR_IO;
	if (rep.status != KH_OK)
		return cables_fail(err, rep.status == KH_REFUSED ? CABLES_ERR_UNUSABLE : CABLES_ERR_IO,
		    "epoch key: keyholder says %s (its log says why)", kh_status_name(rep.status));
	if (rep.len != 0 && rep.len != 32)
		return cables_fail(err, CABLES_ERR_SYNTAX, "epoch key: keyholder answered %zu bytes, not 32", rep.len);
	if (rep.len == 32) {
		memcpy(digest, rep.data, 32);
		*found = true;
	}
	return CABLES_OK;
}

cables_status
khsign_vouch(void *arg, const char *addr, uint8_t (*digests)[32], size_t *n, struct cables_err *err)
{
	struct khsign *k = arg;
	struct kh_request req;
	struct kh_reply rep;

	*n = 0;
	memset(&req, 0, sizeof(req));
	req.op = KH_OP_VOUCH;
	memset(req.fingerprint, '0', KH_FPR_LEN);
	if ((size_t)snprintf(req.address, sizeof(req.address), "%s", addr) >= sizeof(req.address))
		return cables_fail(err, CABLES_ERR_ARG, "vouch: address too long");
	req.len = 1;		/* one 0 byte */
	if (ask(k, &req, &rep, false, "vouch", err) != CABLES_OK)
		return CABLES_ERR_IO;
	if (rep.status != KH_OK)
		return cables_fail(err, rep.status == KH_REFUSED ? CABLES_ERR_UNUSABLE : CABLES_ERR_IO,
		    "vouch: keyholder says %s (its log says why)", kh_status_name(rep.status));
	if (rep.len % 32 != 0 || rep.len / 32 > KH_VOUCH_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "vouch: keyholder answered %zu bytes", rep.len);
	memcpy(digests, rep.data, rep.len);
	*n = rep.len / 32;
	return CABLES_OK;
}

struct khsign *
khsign_new(const char *path)
{
	struct khsign *k = xcalloc(1, sizeof(*k));

	k->path = xstrdup(path);
	return k;
}

void
khsign_free(struct khsign *k)
{
	if (k == NULL)
		return;
	free(k->path);
	free(k);
}

struct x_signer
khsign_signer(struct khsign *k)
{
	struct x_signer s = { sign, k };

	return s;
}
