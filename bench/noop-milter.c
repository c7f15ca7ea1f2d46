/*
 * noop-milter - the floor bench/throughput measures cables-milter against:
 * a milter that, like cables-milter, negotiates the same header and body
 * actions, receives every header field and every body chunk, and touches
 * each byte, but decides nothing and changes nothing.  It asks for the
 * fewest round trips libmilter allows (no reply to connect, MAIL, RCPT,
 * each header, end of header and each body chunk; no HELO, DATA or unknown
 * events), so one message costs the MTA one reply, at end of message.
 *
 * cables-milter under policy "never" accepts at end of header and never
 * sees the body; it is no floor for a milter that must read the message.
 *
 * Usage: noop-milter unix:/path/to/socket   (runs in the foreground)
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libmilter/mfapi.h>

/* Every byte is read, so that the floor includes looking at the message. */
static volatile unsigned long checksum;

static void
touch(const unsigned char *p, size_t n)
{
	unsigned long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += p[i];
	checksum += sum;
}

static sfsistat
noop_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
    unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	const unsigned long actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;
	const unsigned long wanted = SMFIP_HDR_LEADSPC | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA |
	    SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

	(void)ctx; (void)f2; (void)f3;
	*pf0 = f0 & actions;
	*pf1 = f1 & wanted;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

/*
 * The callbacks below were negotiated as "no reply" (SMFIP_NR_*): they
 * return SMFIS_NOREPLY.  Returning SMFIS_CONTINUE there made libmilter log
 * "milter claimed not to reply" for every one of them, through syslog(3),
 * which (no /dev/log here) cost a socket, a failed connect and a close each:
 * 27 to 42 system calls a message that a no-op milter does not make.
 */
static sfsistat
noop_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	touch((const unsigned char *)argv[0], strlen(argv[0]));
	return SMFIS_NOREPLY;
}

static sfsistat
noop_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	touch((const unsigned char *)argv[0], strlen(argv[0]));
	return SMFIS_NOREPLY;
}

static sfsistat
noop_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	touch((const unsigned char *)name, strlen(name));
	touch((const unsigned char *)value, strlen(value));
	return SMFIS_NOREPLY;
}

static sfsistat
noop_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_NOREPLY;
}

static sfsistat
noop_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	touch(chunk, len);
	return SMFIS_NOREPLY;
}

static sfsistat
noop_eom(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_ACCEPT;
}

int
main(int argc, char **argv)
{
	struct smfiDesc desc = {
		.xxfi_name = "noop-milter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
		.xxfi_envfrom = noop_envfrom,
		.xxfi_envrcpt = noop_envrcpt,
		.xxfi_header = noop_header,
		.xxfi_eoh = noop_eoh,
		.xxfi_body = noop_body,
		.xxfi_eom = noop_eom,
		.xxfi_negotiate = noop_negotiate,
	};

	if (argc != 2 || strncmp(argv[1], "unix:", 5) != 0) {
		fprintf(stderr, "usage: noop-milter unix:/path/to/socket\n");
		return 2;
	}
	umask(0);	/* the MTA's user must reach the socket; the bench runs it in a private directory */
	if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS || smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "noop-milter: cannot listen on %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
