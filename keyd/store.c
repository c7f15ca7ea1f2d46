/*
 * store - cables-keyd as the key store's writer for public keys (keydproto.h:
 * import, delete, list): an imported key is checked (it names the address
 * and, unless forced, is usable now), OpenPGP keys merged with what the
 * store holds.  Each request appends its reply lines, or one "error=" line.
 * Declared in lookup.h; keyd's state is keyd_private.h's.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "base64.h"
#include "keyd_private.h"
#include "keydproto.h"
#include "log.h"
#include "lookup.h"
#include "pgp.h"
#include "smime.h"

/* The base64 data of an import, decoded; false with the reason in out. */
static bool
decode_data(const struct buf *b64, struct buf *bin, struct buf *out)
{
	struct b64_decoder d;
	struct cables_err err;

	b64_decoder_init(&d);
	if (b64_decode_update(&d, (const uint8_t *)b64->data, b64->len, bin, &err) != CABLES_OK ||
	    b64_decode_final(&d, &err) != CABLES_OK) {
		keyd_error_format(out, "data: %s", err.msg);
		return false;
	}
	return true;
}

/* A certificate for norm: it must name norm and, unless forced, be usable now. */
static bool
import_smime(struct keyd *k, struct keyd_conf *c, const char *norm, const struct buf *bin, bool force, time_t now,
    struct key_record *r, struct buf *out)
{
	X509 *cert = smime_cert_from_der((const uint8_t *)bin->data, bin->len);
	struct cables_err err;
	char **emails;
	bool named = false;
	size_t n;

	if (cert == NULL) {
		keyd_error_format(out, "data is not a DER X.509 certificate");
		return false;
	}
	n = smime_cert_emails(cert, &emails);
	for (size_t i = 0; i < n && !named; i++) {
		char *e = addr_valid(emails[i]) ? addr_normalize(emails[i], &c->cfg->addr) : NULL;

		named = e != NULL && strcmp(e, norm) == 0;
		free(e);
	}
	smime_free_emails(emails, n);
	if (!named) {
		keyd_error_format(out, "the certificate does not name %s", norm);
	} else if (!force && smime_cert_check(cert, norm, &c->cfg->addr, now, &err) != CABLES_OK) {
		keyd_error_format(out, "not usable: %s (force=yes stores it anyway)", err.msg);
		named = false;
	} else {
		smime_cert_fingerprint(cert, r->fingerprint);
		smime_cert_validity(cert, &r->not_before, &r->not_after);
		r->public_data = smime_cert_to_der(cert, &r->public_len);
	}
	X509_free(cert);
	return named && r->public_data != NULL;
}

/*
 * One OpenPGP key for norm: it must have a user ID with norm and, unless
 * forced, be usable for encryption now.  What the store holds of the key
 * is merged in, so an older copy never takes back a revocation or a subkey.
 */
static bool
import_pgp(struct keyd *k, struct keyd_conf *c, const char *norm, const struct buf *bin, bool force, time_t now,
    struct key_record *r, struct buf *out)
{
	char fprs[2][PGP_FPR_LEN + 1], fpr[PGP_FPR_LEN + 1], one[1][PGP_FPR_LEN + 1];
	struct pgp_key_info info;
	struct cables_err err;
	struct key_list stored;
	struct buf merged;
	size_t n = 0, m;
	bool named = false, ok = false;

	buf_init(&merged);
	memset(&info, 0, sizeof(info));
	pthread_mutex_lock(&k->gpg_lock);
	if (pgp_import(k->gpg_home, (const uint8_t *)bin->data, bin->len, fprs, 2, &n, &err) != CABLES_OK) {
		keyd_error_format(out, "data: %s", err.msg);
		goto out;
	}
	if (n != 1) {
		keyd_error_format(out, "data holds %zu keys; import one at a time", n);
		goto out;
	}
	/* Secrets never cross the socket: a secret key sent anyway is dropped from keyd's home at once. */
	if (pgp_key_get(k->gpg_home, fprs[0], &info, &err) == CABLES_OK && info.secret) {
		pgp_delete(k->gpg_home, fprs[0], NULL);
		keyd_error_format(out, "data holds a secret key; cables-keyd takes public keys only");
		goto out;
	}
	pgp_key_info_release(&info);
	memset(&info, 0, sizeof(info));
	if (keystore_lookup(k->ks, norm, "pgp", &stored, NULL) == CABLES_OK) {
		for (size_t i = 0; i < stored.count; i++)
			if (strcmp(stored.items[i].fingerprint, fprs[0]) == 0)
				pgp_import(k->gpg_home, stored.items[i].public_data, stored.items[i].public_len, one, 1, &m,
				    NULL);
		key_list_release(&stored);
	}
	if (pgp_export(k->gpg_home, fprs[0], false, false, &merged, &err) != CABLES_OK ||
	    pgp_inspect(k->gpg_home, (const uint8_t *)merged.data, merged.len, &info, &err) != CABLES_OK) {
		keyd_error_format(out, "%s", err.msg);
		goto out;
	}
	for (size_t i = 0; i < info.nemails && !named; i++) {
		char *e = addr_normalize(info.emails[i], &c->cfg->addr);

		named = e != NULL && strcmp(e, norm) == 0;
		free(e);
	}
	if (!named) {
		keyd_error_format(out, "no user ID of the key is %s", norm);
		goto out;
	}
	if (!force && pgp_check(k->gpg_home, (const uint8_t *)merged.data, merged.len, norm, &c->cfg->addr,
	    PGP_USE_ENCRYPT, now, fpr, &err) != CABLES_OK) {
		keyd_error_format(out, "not usable: %s (force=yes stores it anyway)", err.msg);
		goto out;
	}
	strlcpy_c(r->fingerprint, info.fpr, sizeof(r->fingerprint));
	r->not_before = info.created;
	r->not_after = info.expires != 0 ? info.expires : KEYSTORE_NEVER_EXPIRES;
	r->public_len = merged.len;
	r->public_data = (uint8_t *)merged.data;
	merged.data = NULL;	/* now the record's */
	ok = true;
out:
	pthread_mutex_unlock(&k->gpg_lock);
	pgp_key_info_release(&info);
	buf_release(&merged);
	return ok;
}

void
keyd_import(struct keyd *k, const struct keyd_request *req, time_t now, struct buf *out)
{
	struct keyd_conf *c = keyd_conf_get(k);
	char *norm = addr_normalize(req->addresses[0], &c->cfg->addr);
	struct keyd_import_reply stored;
	struct cables_err err;
	struct key_record r;
	struct buf bin;
	bool ok;

	buf_init(&bin);
	memset(&r, 0, sizeof(r));
	if (norm == NULL) {
		keyd_error_format(out, "not an address");
		goto out;
	}
	if (!decode_data(&req->data, &bin, out))
		goto out;
	r.address = norm;
	strlcpy_c(r.format, req->format, sizeof(r.format));
	r.source = (char *)"imported";
	if (strcmp(req->format, "smime") == 0)
		ok = import_smime(k, c, norm, &bin, req->force, now, &r, out);
	else
		ok = import_pgp(k, c, norm, &bin, req->force, now, &r, out);
	if (!ok)
		goto out;
	if (keystore_put(k->ks, &r, now, &err) != CABLES_OK) {
		keyd_error_format(out, "%s", err.msg);
		goto out;
	}
	log_info("keyd: stored the %s key %.16s of %s", r.format, r.fingerprint, norm);
	memset(&stored, 0, sizeof(stored));
	strlcpy_c(stored.address, norm, sizeof(stored.address));
	keyd_format_parse(r.format, &stored.format);	/* req->format: keyd_request_parse() took smime or pgp only */
	strlcpy_c(stored.fingerprint, r.fingerprint, sizeof(stored.fingerprint));
	stored.expires = r.not_after;
	keyd_import_reply_format(out, &stored);
out:
	free(r.public_data);
	buf_release(&bin);
	free(norm);
	keyd_conf_put(k, c);
}

void
keyd_delete(struct keyd *k, const struct keyd_request *req, struct buf *out)
{
	struct keyd_conf *c = keyd_conf_get(k);
	char *norm = addr_normalize(req->addresses[0], &c->cfg->addr), *fpr = NULL;
	struct cables_err err;
	size_t deleted = 0;

	if (req->fingerprint != NULL)
		str_lower(fpr = xstrdup(req->fingerprint));
	if (norm == NULL) {
		keyd_error_format(out, "not an address");
	} else if (keystore_delete(k->ks, norm, fpr, &deleted, &err) != CABLES_OK) {
		keyd_error_format(out, "%s", err.msg);
	} else {
		log_info("keyd: deleted %zu key%s of %s", deleted, deleted == 1 ? "" : "s", norm);
		keyd_delete_reply_format(out, deleted);
	}
	free(fpr);
	free(norm);
	keyd_conf_put(k, c);
}

void
keyd_list(struct keyd *k, struct buf *out)
{
	struct key_list keys;
	struct cables_err err;

	if (keystore_list(k->ks, false, &keys, &err) != CABLES_OK) {
		keyd_error_format(out, "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		struct keyd_stored stored;

		memset(&stored, 0, sizeof(stored));
		/* A row whose format or source keyd does not know is left out (a client would refuse the reply). */
		if (!keyd_format_parse(r->format, &stored.format) || !keyd_source_parse(r->source, &stored.source))
			continue;
		strlcpy_c(stored.address, r->address, sizeof(stored.address));
		strlcpy_c(stored.fingerprint, r->fingerprint, sizeof(stored.fingerprint));
		stored.not_before = r->not_before;
		stored.expires = r->not_after;
		stored.private_key = r->secret_len > 0;
		keyd_stored_format(out, &stored);
	}
	key_list_release(&keys);
}
