/*
 * util - allocation helpers and small string utilities.
 *
 * The x*() allocators succeed or do not return: on exhaustion they abort(),
 * as Postfix's mymalloc() does.  A milter that aborts is seen by the MTA as
 * unavailable and the message is temp-failed (milter_default_action), so no
 * mail is lost; continuing with half-built state would be worse.
 *
 * Strings returned by xstrdup()/xasprintf() belong to the caller (free()).
 */
#ifndef CABLES_UTIL_H
#define CABLES_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy with truncation; always NUL-terminates when size > 0. Returns strlen(src). */
size_t strlcpy_c(char *dst, const char *src, size_t size);

/* ASCII-only case folding, independent of the locale. */
void str_lower(char *s);
bool str_ieq(const char *a, const char *b);
bool str_nieq(const char *a, const char *b, size_t n);

/* Strip ASCII whitespace at both ends, in place; returns s. */
char *str_trim(char *s);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex digits into out; false on bad input. */
bool hex_decode(const char *in, uint8_t *out, size_t n);

/* A Unix time as YYYY-MM-DD (UTC). */
void format_day(long long t, char *out, size_t len);

/*
 * Write all n bytes to fd, again after EINTR and short writes.  False on
 * failure, with errno set (EIO when write() wrote nothing).
 */
bool write_fully(int fd, const void *p, size_t n);

/*
 * The same for a socket, with send(MSG_NOSIGNAL): a peer gone is a false
 * return (EPIPE), never a SIGPIPE.
 */
bool send_fully(int fd, const void *p, size_t n);

/*
 * Read exactly n bytes from fd before deadline (monotonic_ms()); false on
 * end of file, error or timeout.
 */
bool recv_exactly(int fd, void *p, size_t n, long long deadline);

/*
 * A stream socket (close-on-exec, and flags such as SOCK_NONBLOCK)
 * connected to the UNIX socket at path; -1 with errno set on failure
 * (ENAMETOOLONG for a path that does not fit a sockaddr_un).
 */
int unix_connect(const char *path, int flags);

/*
 * Open path for appending (or, with truncate, rewriting) as a process
 * that may still be root does it (LogFile, PidFile): never through a
 * symbolic link (O_NOFOLLOW); created 0640 when missing; an existing file
 * must be a regular file with one link, owned by root or the effective
 * user, not writable by group or others, so that a less privileged user
 * cannot point the write somewhere else.  The checks are made on the open
 * file, before anything is written or truncated.  The fd (close-on-exec),
 * or -1 with why saying what was refused.
 */
int file_open_owned(const char *path, bool truncate, char *why, size_t why_len);

/*
 * Give the UNIX socket at path the group gid (-1: leave it) without being
 * led elsewhere: a symbolic link put in its place gets the group itself,
 * not its target (AT_SYMLINK_NOFOLLOW), and the node must still be a
 * socket afterwards.  The socket's mode is never set by path: callers
 * make it with its mode (umask around bind()).  False with why set.
 */
bool socket_chgrp(const char *path, gid_t gid, char *why, size_t why_len);

/*
 * A growable byte buffer.  buf_init() leaves it empty; buf_release() frees
 * its storage.  data is always NUL-terminated (not counted in len) so it
 * may be used as a C string when the content has no NUL.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appends(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * "inet:PORT@ADDRESS" or "inet6:PORT@ADDRESS" (numeric, or localhost) as a
 * socket address and its length; false when spec is not one.
 */
bool inet_spec_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len);

/* Milliseconds on the monotonic clock (for deadlines). */
long long monotonic_ms(void);

#endif
