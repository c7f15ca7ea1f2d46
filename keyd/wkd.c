/* wkd - the OpenPGP Web Key Directory as a discovery source; see wkd.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "peer.h"
#include "wkd.h"

#define WKD_MAX (256 * 1024)

void
wkd_hash(const char *local, char out[33])
{
	static const char alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, bits = 0, acc = 0;
	char lower[256];
	size_t n = 0, o = 0;

	for (; local[n] != '\0' && n + 1 < sizeof(lower); n++)
		lower[n] = (char)tolower((unsigned char)local[n]);
	lower[n] = '\0';
	EVP_Digest(lower, n, md, &mdlen, EVP_sha1(), NULL);
	/* 160 bits, 5 at a time, most significant first. */
	for (unsigned int i = 0; i < mdlen; i++) {
		acc = (acc << 8) | md[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[o] = '\0';
}

bool
wkd_fetch(const struct config *cfg, struct dns_resolver *res, const char *addr, time_t now, long long deadline,
    struct buf *keys, char *why, size_t why_len)
{
	const char *at = strrchr(addr, '@');
	char local[256], domain[256], hash[33], host[300], url[900], *escaped;
	CURL *curl;
	bool ok;

	if (at == NULL || (size_t)(at - addr) >= sizeof(local) || strlen(at + 1) >= sizeof(domain)) {
		snprintf(why, why_len, "not an address");
		return false;
	}
	memcpy(local, addr, (size_t)(at - addr));
	local[at - addr] = '\0';
	strlcpy_c(domain, at + 1, sizeof(domain));
	if (!ascii_name(domain)) {
		snprintf(why, why_len, "an internationalised domain name: no WKD is asked");
		return false;
	}
	str_lower(domain);
	wkd_hash(local, hash);
	if ((curl = curl_easy_init()) == NULL || (escaped = curl_easy_escape(curl, local, 0)) == NULL) {
		curl_easy_cleanup(curl);
		snprintf(why, why_len, "out of memory");
		return false;
	}
	curl_easy_cleanup(curl);
	/* The advanced method first; the direct one when openpgpkey.DOMAIN has no address. */
	snprintf(host, sizeof(host), "openpgpkey.%s", domain);
	snprintf(url, sizeof(url), "https://%s/.well-known/openpgpkey/%s/hu/%s?l=%s", host, domain, hash, escaped);
	ok = peer_https(res, url, host, 443, NULL, NULL, cfg->exchange_ca_file, now, deadline, WKD_MAX, keys, why, why_len);
	if (!ok && strstr(why, "has no address") != NULL) {
		buf_release(keys);
		snprintf(url, sizeof(url), "https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain, hash, escaped);
		ok = peer_https(res, url, domain, 443, NULL, NULL, cfg->exchange_ca_file, now, deadline, WKD_MAX, keys, why,
		    why_len);
	}
	if (ok && keys->len == 0) {
		snprintf(why, why_len, "%.200s: an empty answer", url);
		ok = false;
	}
	curl_free(escaped);
	if (!ok)
		buf_release(keys);
	return ok;
}
