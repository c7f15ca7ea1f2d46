/*
 * smimea - which certificates an SMIMEA RRset (RFC 8162) vouches for, with
 * the certificate usages, selectors and matching types of RFC 6698 as
 * RFC 7671 clarifies them.
 *
 * Discovery needs the certificate itself, so the candidates are the
 * certificates the RRset carries whole (selector 0, matching type 0) that
 * are not CA certificates.  A candidate is vouched for when some record of
 * the set asserts it:
 *
 *   3 DANE-EE   the record matches the candidate (certificate or SPKI, whole
 *               or SHA-256/SHA-512); no chain, no names (RFC 7671 5.1)
 *   2 DANE-TA   the candidate chains to a certificate of the set that
 *               matches the record, taken as the trust anchor
 *   1 PKIX-EE   the record matches the candidate, which also chains to
 *               TrustAnchors
 *   0 PKIX-TA   the candidate chains to TrustAnchors through a certificate
 *               that matches the record
 *
 * Chains are built from the set's certificates.  Records of other usages,
 * selectors or matching types assert nothing.  Whoever uses a certificate
 * still runs the usability checks (smime_cert_check) on it.
 */
#ifndef CABLES_SMIMEA_H
#define CABLES_SMIMEA_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "dns.h"

/*
 * The certificates recs vouch for, in out (new references, at most max);
 * anchors (TrustAnchors) may be NULL.  Returns how many; when none, why
 * says why.
 */
size_t smimea_select(const struct dns_record *recs, size_t n, X509_STORE *anchors, time_t now, X509 **out,
    size_t max, char *why, size_t why_len);

#endif
