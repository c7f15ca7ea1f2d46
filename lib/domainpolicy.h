/*
 * domainpolicy - a domain's published statement about its mail, the
 * DNSSEC-signed TXT record at _cables-policy.DOMAIN (doc/key-exchange.md,
 * "No downgrade"):
 *
 *   _cables-policy.b.test. IN TXT "v=cables1; p=require"
 *
 * "v=cables1" comes first; then tags "name=value" separated by ';' (blanks
 * around them and a final ';' allowed), each name at most once.  p is
 * required and "require" is its one value: mail to the domain's users is
 * encrypted or not sent.  Other tag names are left for later versions and
 * skipped; anything else (a bad tag, a duplicate, no p, another version,
 * another p) makes the record not a statement.
 *
 * domainpolicy_parse() reads one record in the presentation form that
 * dns_lookup_name() gives (one or more quoted strings, joined; \" \\ and
 * \DDD escapes); CABLES_ERR_SYNTAX with the reason when it is not a
 * statement.  Nothing here trusts the record: callers take only a
 * DNSSEC-validated (secure) answer.
 */
#ifndef CABLES_DOMAINPOLICY_H
#define CABLES_DOMAINPOLICY_H

#include <stddef.h>

#include "status.h"

#define DOMAINPOLICY_LABEL "_cables-policy"
/* The record's text for p=require, as cables-keyctl publish --dns prints it. */
#define DOMAINPOLICY_REQUIRE_TEXT "v=cables1; p=require"
/* At most this much text in a record (longer is not a statement). */
#define DOMAINPOLICY_TEXT_MAX 1024

enum domainpolicy { DOMAINPOLICY_REQUIRE };

cables_status domainpolicy_parse(const char *rdata, size_t len, enum domainpolicy *out, struct cables_err *err);

#endif
