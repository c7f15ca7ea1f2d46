/*
 * gate - the verify-only mode of the re-injection listener.
 *
 * The listener that takes the milter's copies back (ReinjectTo) is an SMTP
 * port on the loopback: any local user or process can reach it.  It runs
 * this milter too, and Postfix names it with milter_macro_daemon_name;
 * when {daemon_name} equals ReinjectDaemonName, a message passes only if
 * it carries exactly one marker (reinject.h) that verifies for its envelope
 * sender, recipients, header block and body, was made since this process
 * started and at most REINJECT_GATE_WINDOW seconds ago, and has not passed
 * before.  Everything else is rejected (5.7.1): plaintext for a require
 * recipient, a forged header, a copy replayed from the wire.
 *
 * Replays: the MACs of markers that passed are kept until their markers
 * expire, at most GATE_SEEN_MAX of them (each copy is verified within
 * seconds of being made, so this is many thousand copies a minute); when
 * that many are live, further copies are temp-failed (4.3.2), and the
 * message they belong to with them, so nothing is lost.  The cache lives
 * in memory: a marker made before this process started is refused, so a
 * restart opens no window (a copy in flight across a restart is refused,
 * and its original transaction, temp-failed, is tried again).
 *
 * Thread-safe; gate_setup before the first message, gate_release at exit.
 */
#ifndef CABLES_GATE_H
#define CABLES_GATE_H

#include <time.h>

#include "keys.h"
#include "message.h"
#include "outcome.h"
#include "reinject.h"

#define REINJECT_GATE_WINDOW 600
#define GATE_SEEN_MAX 65536

/* Markers made before started are refused. */
void gate_setup(time_t started);

/* The verdict on message m at the re-injection listener (after its body). */
void gate_check(const struct message *m, const struct milter_env *env, struct outcome *out);

enum gate_seen { GATE_NEW, GATE_SEEN_BEFORE, GATE_FULL };

/*
 * A marker that verified (stamp from reinject_marker_verify), checked
 * against replays and remembered until stamp->t + lifetime: GATE_NEW the
 * first time; GATE_SEEN_BEFORE when it passed before or was made before
 * gate_setup's time; GATE_FULL when GATE_SEEN_MAX live markers are
 * remembered.  *why says why when it is not GATE_NEW.  Used by the
 * verify-only listener and by the marker check on any other (copies.h).
 */
enum gate_seen gate_remember(const struct reinject_stamp *stamp, long lifetime, time_t now, const char **why);

/* Forget every marker seen. */
void gate_release(void);

#endif
