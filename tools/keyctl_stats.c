/*
 * keyctl_stats - "cables-keyctl stats": the counters of cables-keyd (its
 * request=stats, whose metric= lines are the samples KeydMetricsListen
 * serves) and of cables-milter (its MetricsListen, the only place the
 * milter shows them), printed as Prometheus samples, one a line, for
 * people without a Prometheus server.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "keyctl.h"
#include "keydproto.h"
#include "metrics.h"
#include "util.h"

#define METRICS_REPLY_MAX (4 * 1024 * 1024)

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (b->len + size * n > METRICS_REPLY_MAX)
		return 0;
	buf_append(b, p, size * n);
	return size * n;
}

/* GET /metrics at MetricsListen spec into out; false with why. */
static bool
fetch_metrics(const char *spec, struct buf *out, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct cables_err err;
	char host[INET6_ADDRSTRLEN], url[96];
	unsigned port;
	CURL *curl;
	CURLcode rc;
	long status = 0;

	if (metrics_listen_parse(spec, &ss, &len, &err) != CABLES_OK) {
		snprintf(why, why_len, "%s", err.msg);
		return false;
	}
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(url, sizeof(url), "http://%s:%u/metrics", host, port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(url, sizeof(url), "http://[%s]:%u/metrics", host, port);
	}
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(why, why_len, "libcurl does not start");
		return false;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");	/* loopback: never through a proxy from the environment */
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK || status != 200) {
		snprintf(why, why_len, "%s: %s", url, rc != CURLE_OK ? curl_easy_strerror(rc) : "not answered 200");
		return false;
	}
	return true;
}

/*
 * The sample lines of an exposition text (no comments).  Whatever answers
 * on MetricsListen (another process may hold the port) reaches the admin's
 * terminal: a line with a byte that is not printable ASCII is not shown.
 */
static void
print_samples(const char *text, size_t len)
{
	const char *p = text, *end;
	size_t hidden = 0;

	if (len == 0)
		return;	/* text may be NULL */
	end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p), i;

		for (i = 0; i < n && (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] <= 0x7e; i++)
			;
		if (i < n)
			hidden++;
		else if (n > 0 && p[0] != '#')
			printf("%.*s\n", (int)n, p);
		p += n + 1;
	}
	if (hidden > 0)
		printf("# %zu line%s not shown: not printable text\n", hidden, hidden == 1 ? "" : "s");
}

int
keyctl_stats(struct ctx *c, int argc, char **argv)
{
	struct buf req, reply, samples;
	struct cables_err err;
	char why[CABLES_ERR_MAX + 128];
	int shown = 0;

	(void)argv;
	if (argc != 1)
		keyctl_usage("stats takes no arguments");
	buf_init(&req);
	buf_init(&reply);
	buf_init(&samples);
	printf("# cables-keyd (KeydSocket %s)\n", c->cfg->keyd_socket != NULL ? c->cfg->keyd_socket : "none");
	if (c->cfg->keyd_socket == NULL) {
		printf("# not asked: KeydSocket is none\n");
	} else {
		keyd_stats_request_format(&req);
		if (keyd_call(c->cfg->keyd_socket, &req, 5000, &reply, &err) != CABLES_OK ||
		    keyd_stats_reply_parse(reply.data, reply.len, &samples, &err) != CABLES_OK) {
			printf("# not answered: %s\n", err.msg);
		} else {
			fwrite(samples.data, 1, samples.len, stdout);
			shown++;
		}
	}
	buf_reset(&samples);
	printf("# cables-milter (MetricsListen %s)\n", c->cfg->metrics_listen != NULL ? c->cfg->metrics_listen : "none");
	if (c->cfg->metrics_listen == NULL) {
		printf("# not asked: the milter shows its counters on MetricsListen only\n");
	} else if (!fetch_metrics(c->cfg->metrics_listen, &samples, why, sizeof(why))) {
		printf("# not answered: %s\n", why);
	} else {
		print_samples(samples.data, samples.len);
		shown++;
	}
	buf_release(&req);
	buf_release(&reply);
	buf_release(&samples);
	return shown > 0 ? 0 : 1;
}
