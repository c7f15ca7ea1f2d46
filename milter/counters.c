/* counters - the milter's counters and their exposition; see counters.h. */
#include "autoconfig.h"

#include <string.h>

#include "counters.h"
#include "metrics.h"
#include "smime.h"

enum { FMT_NONE, FMT_SMIME, FMT_PGP, FMT_COUNT };

static const char *const direction_names[DIRECTION_COUNT] = { "inbound", "outbound", "reinjection" };
static const char *const format_names[FMT_COUNT] = { "none", "smime", "pgp" };

/* Result of a keyholder call: its status, or unreachable. */
#define KH_UNREACHABLE KH_STATUS_MAX

static metric_counter messages[DIRECTION_COUNT][CLASS_COUNT][FMT_COUNT];
static struct metric_histogram seconds[DIRECTION_COUNT];
static metric_counter keyholder[KH_OP_MAX][KH_STATUS_MAX + 1];

static int
format_index(const char *format)
{
	if (format == NULL)
		return FMT_NONE;
	return strcmp(format, "smime") == 0 ? FMT_SMIME : strcmp(format, "pgp") == 0 ? FMT_PGP : FMT_NONE;
}

void
counters_message(enum direction d, const struct outcome *out, uint64_t elapsed_ns)
{
	enum outcome_class cls = out->cls;
	int f = format_index(out->format);

	/* The verdict the MTA gets wins over the class (a refusal is a refusal, whatever was done before it). */
	if (out->verdict == VERDICT_TEMPFAIL || out->verdict == VERDICT_REJECT) {
		cls = out->verdict == VERDICT_TEMPFAIL ? CLASS_TEMPFAILED : CLASS_REJECTED;
		f = FMT_NONE;
	} else if (cls == CLASS_NONE) {
		cls = CLASS_PASSED;
	}
	if (d >= DIRECTION_COUNT || cls >= CLASS_COUNT)
		return;
	metric_inc(&messages[d][cls][f]);
	metric_observe(&seconds[d], elapsed_ns);
}

void
counters_keyholder(enum kh_op op, const struct kh_reply *rep, bool reached)
{
	unsigned int result = reached && rep->status < KH_STATUS_MAX ? (unsigned int)rep->status : KH_UNREACHABLE;

	if (op > 0 && op < KH_OP_MAX)
		metric_inc(&keyholder[op][result]);
}

/* Is (direction, class, format) a series shown while it is zero? */
static bool
expected(int d, int c, int f)
{
	static const bool by_format[CLASS_COUNT] = {
		[CLASS_ENCRYPTED] = true, [CLASS_SIGNED] = true, [CLASS_DECRYPTED] = true, [CLASS_VERIFIED] = true,
		[CLASS_NOT_DECRYPTED] = true, [CLASS_HELD] = true,
	};
	static const bool in_direction[DIRECTION_COUNT][CLASS_COUNT] = {
		[DIRECTION_INBOUND] = { [CLASS_PASSED] = true, [CLASS_DECRYPTED] = true, [CLASS_VERIFIED] = true,
		    [CLASS_NOT_DECRYPTED] = true, [CLASS_HELD] = true, [CLASS_TEMPFAILED] = true,
		    [CLASS_REJECTED] = true },
		[DIRECTION_OUTBOUND] = { [CLASS_PASSED] = true, [CLASS_ENCRYPTED] = true, [CLASS_SIGNED] = true,
		    [CLASS_PLAINTEXT] = true, [CLASS_TEMPFAILED] = true, [CLASS_REJECTED] = true,
		    [CLASS_OWN_COPY] = true },
		[DIRECTION_REINJECTION] = { [CLASS_OWN_COPY] = true, [CLASS_TEMPFAILED] = true, [CLASS_REJECTED] = true },
	};

	if (!in_direction[d][c] || by_format[c] != (f != FMT_NONE))
		return false;
	return !(c == CLASS_SIGNED && f == FMT_PGP);	/* clear-signing is S/MIME's alone (handler.h) */
}

void
counters_render(struct buf *out, struct smime_cache *certs)
{
	char labels[160];

	metric_family(out, "cables_messages_total", "counter",
	    "Messages decided by cables-milter, by direction, verdict and format.");
	for (int d = 0; d < DIRECTION_COUNT; d++)
		for (int c = CLASS_PASSED; c < CLASS_COUNT; c++)
			for (int f = 0; f < FMT_COUNT; f++) {
				/* The series each direction can have, from zero, so that rate() sees them start; any other once it counts. */
				if (!expected(d, c, f) && metric_get(&messages[d][c][f]) == 0)
					continue;
				snprintf(labels, sizeof(labels), "direction=\"%s\",verdict=\"%s\",format=\"%s\"",
				    direction_names[d], outcome_class_name((enum outcome_class)c), format_names[f]);
				metric_sample(out, "cables_messages_total", labels, metric_get(&messages[d][c][f]));
			}
	metric_family(out, "cables_message_processing_seconds", "histogram",
	    "Time cables-milter spent deciding a message (end of header and end of message), by direction.");
	for (int d = 0; d < DIRECTION_COUNT; d++) {
		snprintf(labels, sizeof(labels), "direction=\"%s\"", direction_names[d]);
		metric_histogram(out, "cables_message_processing_seconds", labels, &seconds[d]);
	}
	metric_family(out, "cables_keyholder_operations_total", "counter",
	    "Private-key operations cables-milter asked of cables-keyholder, by operation and answer.");
	for (int op = KH_OP_RSA_DECRYPT; op < KH_OP_MAX; op++) {
		if (op == KH_OP_EXCHANGE_SIGN || op == KH_OP_EPOCH_CURRENT)
			continue;	/* keyd's alone */
		for (int r = 0; r <= KH_STATUS_MAX; r++) {
			snprintf(labels, sizeof(labels), "operation=\"%s\",result=\"%s\"", kh_op_name((enum kh_op)op),
			    r == KH_UNREACHABLE ? "unreachable" : kh_status_name((enum kh_status)r));
			metric_sample(out, "cables_keyholder_operations_total", labels, metric_get(&keyholder[op][r]));
		}
	}
	if (certs != NULL) {
		unsigned long hits, misses;

		smime_cache_stats(certs, &hits, &misses);
		metric_family(out, "cables_certificate_cache_total", "counter",
		    "Certificates cables-milter decoded (miss) or found decoded in its cache (hit).");
		metric_sample(out, "cables_certificate_cache_total", "result=\"hit\"", hits);
		metric_sample(out, "cables_certificate_cache_total", "result=\"miss\"", misses);
	}
}

