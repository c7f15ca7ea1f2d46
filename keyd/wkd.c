/* wkd - the OpenPGP Web Key Directory as a discovery source; see wkd.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
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

struct sink {
	struct buf *data;
	bool too_big;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (s->data->len + size * n > WKD_MAX) {
		s->too_big = true;
		return 0;
	}
	buf_append(s->data, p, size * n);
	return size * n;
}

/* GET url from host (its address looked up through res); true on a 200 with data. */
static bool
get(const struct config *cfg, struct dns_resolver *res, const char *host, const char *url, time_t now,
    long long deadline, struct buf *out, char *why, size_t why_len)
{
	char addr[INET6_ADDRSTRLEN + 2], entry[400], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *resolve = NULL;
	struct sink sink = { out, false };
	long status = 0;
	CURLcode rc;
	CURL *curl;

	if (!peer_address_of(res, host, now, deadline, addr, sizeof(addr), why, why_len))
		return false;
	if (peer_left(deadline) < 50 || (curl = curl_easy_init()) == NULL) {
		snprintf(why, why_len, "no time left within LookupTimeout");
		return false;
	}
	if (strcmp(addr, host) != 0) {
		snprintf(entry, sizeof(entry), "%s:443:%s%s%s", host, strchr(addr, ':') != NULL ? "[" : "", addr,
		    strchr(addr, ':') != NULL ? "]" : "");
		resolve = curl_slist_append(resolve, entry);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)peer_left(deadline));
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "cables-keyd/" PACKAGE_VERSION);
	if (cfg->exchange_ca_file != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->exchange_ca_file);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(resolve);
	if (rc != CURLE_OK)
		snprintf(why, why_len, "%.200s: %s", url, sink.too_big ? "larger than 256 KB" :
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	else if (status != 200 || out->len == 0)
		snprintf(why, why_len, "%.200s: HTTP %ld", url, status);
	return rc == CURLE_OK && status == 200 && out->len > 0;
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
	buf_init(keys);
	ok = get(cfg, res, host, url, now, deadline, keys, why, why_len);
	if (!ok && strstr(why, "has no address") != NULL) {
		buf_release(keys);
		snprintf(url, sizeof(url), "https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain, hash, escaped);
		ok = get(cfg, res, domain, url, now, deadline, keys, why, why_len);
	}
	curl_free(escaped);
	if (!ok)
		buf_release(keys);
	return ok;
}
