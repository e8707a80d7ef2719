/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util: the small pieces every part of bootback shares and that need no
 * library beyond libc: the thread-local last error, cleanup helpers,
 * checked arithmetic, hex and size formatting, UTC time stamps, a progress
 * line for terminals, running a helper program.
 *
 * Error convention (docs/design.md, "Errors"): a library function that fails
 * returns -1 or NULL and records one message + errno with error_set*() at
 * the place of failure.  Callers that only pass the failure on do not set it
 * again; they may add context with error_prefix().  The storage is a fixed
 * thread-local buffer, never a heap pointer.
 */
#ifndef BOOTBACK_UTIL_H
#define BOOTBACK_UTIL_H

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>

/* ---- errors (error.c) ------------------------------------------------ */

/* Record the last error: the formatted message followed by ": strerror(errnum)"
 * when errnum != 0.  Also sets errno = errnum.  Thread-safe (per thread). */
void error_set (int errnum, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
/* Same, message only (errno of the error is EINVAL unless errnum given). */
#define error_setx(...) error_set (0, __VA_ARGS__)
/* Put "context: " in front of the current message (keeps its errno). */
void error_prefix (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
/* The last message of this thread ("" if none). Valid until the next call. */
const char *error_msg (void);
/* The errno recorded with the last error (EIO if none was given). */
int error_errno (void);
void error_clear (void);
/* Put back a message saved with error_msg()/error_errno() (as is). */
void error_restore (int errnum, const char *message);
/* Keep the current error across cleanup code that may overwrite it. */
#define ERROR_SAVE(name) \
  char name##_msg[1024]; int name##_errno = error_errno (); \
  snprintf (name##_msg, sizeof name##_msg, "%s", error_msg ())
#define ERROR_RESTORE(name) error_restore (name##_errno, name##_msg)

/* ---- cleanup helpers (nbdkit style) ---------------------------------- */

void cleanup_free (void *ptr);
void cleanup_fclose (FILE **fp);
void cleanup_close (int *fd);
#define CLEANUP_FREE   __attribute__((cleanup (cleanup_free)))
#define CLEANUP_FCLOSE __attribute__((cleanup (cleanup_fclose)))
#define CLEANUP_CLOSE  __attribute__((cleanup (cleanup_close)))
/* A NULL-terminated array of malloc'd strings (strv_free). */
void cleanup_strv (char ***v);
#define CLEANUP_STRV   __attribute__((cleanup (cleanup_strv)))
/* jansson's own json_auto_t (json_decref at the end of the scope) serves
 * JSON values; recovery/virt has the libvirt and libxml2 ones. */

/* Hold mutex m until the end of the enclosing scope:
 *   ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
 * Every return path then unlocks, once. */
pthread_mutex_t *lock_mutex (pthread_mutex_t *m);
void cleanup_unlock (pthread_mutex_t **m);
#define UTIL_CONCAT_(a, b) a##b
#define UTIL_CONCAT(a, b) UTIL_CONCAT_ (a, b)
#define ACQUIRE_LOCK_FOR_CURRENT_SCOPE(m)                               \
  pthread_mutex_t *UTIL_CONCAT (lock_guard_, __COUNTER__)               \
    __attribute__((cleanup (cleanup_unlock), unused)) = lock_mutex (m)

/* ---- growing arrays --------------------------------------------------- */

/* Append one zeroed element to the array v of n elements (v may be NULL
 * when n is 0): v is reallocated (aborting on out of memory), n grows by
 * one, and the value is a pointer to the new element.
 *   struct tap *t = ARRAY_PUSH (r->taps, r->ntaps);  */
#define ARRAY_PUSH(v, n)                                                \
  ((v) = xreallocarray_zero ((v), (n), sizeof *(v)), &(v)[(n)++])
/* v grown to n + 1 elements of size bytes, the last one zeroed. */
void *xreallocarray_zero (void *v, size_t n, size_t size);
/* Append s (taken over: freed with the array) to the NULL-terminated
 * array *v of *n strings (*v NULL and *n 0 to start).  n may be NULL,
 * then the length is counted. */
void strv_push (char ***v, size_t *n, char *s);
/* strv_push of a copy of each string up to a NULL. */
void strv_pushl (char ***v, size_t *n, ...) __attribute__((sentinel));
/* A copy of s (text a guest may have written: an HTTP body, a command's
 * output) that is printable ASCII, valid UTF-8 and JSON-safe: every other
 * byte becomes '?'; newlines and tabs stay if keep_lines, else become
 * spaces. */
char *xstrdup_printable (const char *s, bool keep_lines);
/* Length of the UTF-8 sequence at c (n >= 1 bytes left), or 0 if it is
 * not a valid one (RFC 3629: no overlong forms, surrogates or code points
 * past U+10FFFF). */
size_t utf8_seq_len (const unsigned char *c, size_t n);

/* ---- checked arithmetic ----------------------------------------------- */

#define ADD_OVERFLOW(a, b, r) __builtin_add_overflow ((a), (b), (r))
#define MUL_OVERFLOW(a, b, r) __builtin_mul_overflow ((a), (b), (r))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- strings, sizes, hex (misc.c) ------------------------------------ */

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode (const uint8_t *in, size_t len, char *out);
/* Parse exactly 2*len hex digits; -1 on anything else. */
int hex_decode (const char *in, uint8_t *out, size_t len);
/* "1M", "64K", "4MiB", "1048576" -> bytes; -1 with error set if invalid. */
int64_t parse_size (const char *s);
/* Human-readable size, e.g. "1.5 GiB", into buf. Returns buf. */
char *human_size (uint64_t bytes, char *buf, size_t len);
/* asprintf that aborts on out of memory (there is no sensible recovery). */
char *xasprintf (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
void *xmalloc (size_t n);
void *xcalloc (size_t n, size_t m);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
/* Free a NULL-terminated array of malloc'd strings and the array (NULL ok). */
void strv_free (char **v);
/* True if all len bytes of buf are zero (fast). */
bool is_zero (const void *buf, size_t len);
/* Valid name for a VM: [A-Za-z0-9._-], 1..VM_NAME_MAX, not starting '.'
 * or '-'.  A disk name is the same, but at most DISK_NAME_MAX long (disk
 * names are held in char[DISK_NAME_MAX + 1] fields). */
#define VM_NAME_MAX   128
#define DISK_NAME_MAX 64
/* Text forms of fixed length (the buffers hold one more, the NUL). */
#define UUID_STR_LEN   36   /* 8-4-4-4-12 hex digits */
#define SHA256_HEX_LEN 64
bool name_is_valid (const char *s);
bool disk_name_is_valid (const char *s);
/* The same characters, at most max long (lab and group names). */
bool name_is_valid_max (const char *s, size_t max);
/* A restore point id: a time stamp exactly like 20261122T045506Z. */
bool point_id_is_valid (const char *s);
/* Create (or truncate) path with mode (before the umask) and write len
 * bytes; 0, or -1 with error set naming path (a failed write or close
 * included, the file then left as it is).  A symlink at path is not
 * followed (ELOOP), a FIFO with no reader not waited for (ENXIO). */
int write_whole_file (const char *path, const void *buf, size_t len,
                      mode_t mode);
/* Rename from to to, failing with EEXIST if to exists (renameat2's
 * RENAME_NOREPLACE; where the file system lacks it, link then unlink). */
int rename_noreplace (const char *from, const char *to);

/* A line for the caller: to fn (opaque, line) if the caller gave a
 * callback, else to stderr as "bootback: PREFIXLINE" (how a library
 * reports what is not an error: notes, warnings of cleanup). */
void report_linev (void (*fn) (void *opaque, const char *line), void *opaque,
                   const char *prefix, const char *fmt, va_list ap)
  __attribute__((format (printf, 4, 0)));

/* ---- time (misc.c) ---------------------------------------------------- */

/* Restore point time stamps are UTC, basic ISO 8601: 20261122T045506Z. */
#define TIMESTAMP_LEN 16
void timestamp_format (time_t t, char out[TIMESTAMP_LEN + 1]);
/* Times in JSON and reports: UTC, extended ISO 8601, 2026-11-22T04:55:06Z
 * (0000-00-00T00:00:00Z for a time outside the years 1000 to 9999). */
#define ISO_TIME_LEN 20
void iso_time_format (time_t t, char out[ISO_TIME_LEN + 1]);
/* Parse a stamp (also accepts 2026-11-22T04:55:06Z and ...+00:00 forms)
 * of a year from 1000 to 9999; -1 on error. */
int timestamp_parse (const char *s, time_t *t);
/* Seconds since an arbitrary point, monotonic. */
double now_monotonic (void);

/* ---- test hooks (hooks.c, misc.c) -------------------------------------- */

/* The value of the test hook NAME from the environment (NULL if unset or
 * empty), in a build for testing; always NULL in an installed build (see
 * hooks.c).  test_hooks_enabled says which this program is. */
const char *test_hook_env (const char *name);
extern const bool test_hooks_enabled;

/* This process holds a secret (a repository's key and so its decrypted
 * data, S3 credentials): it writes no core file (RLIMIT_CORE 0) and is not
 * dumpable (prctl PR_SET_DUMPABLE 0), since the kernel hands a core to a
 * core_pattern pipe (systemd-coredump, apport) whatever RLIMIT_CORE says
 * and skips only a process that is not dumpable.  This also keeps
 * processes of the same uid (not root) from ptrace and from its /proc/PID
 * files but stat and cmdline.  Inherited by fork, reset by execve (the
 * programs it starts hold no secret: env_without_secrets).  Warns on
 * stderr if it cannot.  Idempotent; process-wide. */
void secrets_held (void);

/* The numbered steps of the commit protocol call this; when the environment
 * has BOOTBACK_CRASH_STEP=N and step == N the process kills itself with
 * SIGKILL (crash-safety tests); with BOOTBACK_STOP_STEP=N it stops itself
 * with SIGSTOP instead (a test then changes something and sends SIGCONT).
 * 1-5: the commit protocol (docs/design.md); 6: inside the catalog's point
 * insert; 7: instant start, before its first overlay is created (the point's
 * manifest was read; its nbdkit has not opened it); 8 and 9: remote
 * migrate, before its first volume is created, and once it is created and
 * recorded; 10: bootback scan's scanning process, its rules and signatures
 * loaded and its privileges dropped, before it reads the disk (a test
 * reads its memory; scan_disk passes both variables on in the otherwise
 * empty environment it execs that process with); 11: a lock's taker or
 * creator that wrote its lock and read it back, about to wait for
 * another taker's live claim on it to go (io.c lock_settle).  Both are
 * test hooks (test_hook_env). */
void crash_step (int step);

/* ---- private files and directories (private.c) ------------------------ */

/* What bootback creates is its owner's alone, whatever the umask. */
#define PRIVATE_DIR_MODE 0700
#define PRIVATE_FILE_MODE 0600
/* mkdir with mode 0700; an existing directory is fine (left as it is). */
int mkdir_private (const char *path);
/* mkdir -p, every directory it creates 0700. */
int mkdir_p_private (const char *path);
/* open (path, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600): the fd, or
 * -1 (errno; ELOOP for a symlink at path). */
int open_private (const char *path, int flags);
/* Create path, empty, 0600 (EEXIST if it exists), for a program that
 * writes it (qemu-img create keeps the mode of the file it truncates).
 * -1 with the error set. */
int create_private (const char *path);
/* fopen (path, "we"), but a file it creates is 0600, never through a
 * symlink (ELOOP), and an existing one is truncated only if it is a
 * regular file of ours (our uid, one link; made 0600): else EPERM (a
 * FIFO, a device: EINVAL) and nothing written.  NULL with errno and the
 * error set. */
FILE *fopen_private (const char *path);
/* Take group and other permissions off path: 1 if it had any (*was: its
 * mode before), 0 if not, -1 with the error set. */
int tighten_mode (const char *path, mode_t *was);
/* An output bootback checks and another program (qemu-img, qemu-nbd,
 * QEMU, libvirt) then opens by name is only as safe as the directories
 * above it: the one holding path (symbolic links resolved) owned by root
 * or us and writable by its owner only, each above it too (or sticky).
 * resolved (unless NULL): path with its directory resolved, the name to
 * use from then on.  -1 with the error naming the directory, its owner
 * and mode. */
int dir_chain_private (const char *path, char *resolved, size_t len);

/* ---- progress line (progress.c) -------------------------------------- */

/* A one-line progress display on stderr, only when stderr is a terminal
 * (or BOOTBACK_PROGRESS=1): bytes done / total, percentage, rate, ETA.
 * Updates at most 5 times a second.  Thread-safe: progress_add may be
 * called from worker threads. */
struct progress;
struct progress *progress_new (const char *label, uint64_t total);
void progress_add (struct progress *p, uint64_t bytes);
/* Clear the line (leaves nothing on a terminal) and free. NULL is ok. */
void progress_free (struct progress *p);
/* Also hand every progress of this process to fn (label, bytes done,
 * total), at most 5 times a second per progress and once more when it is
 * freed, whether or not stderr is a terminal; from the thread that adds
 * (fn must be thread-safe).  NULL: no more.  A web job sets it. */
typedef void (*progress_sink_fn) (void *opaque, const char *label,
                                  uint64_t done, uint64_t total);
void progress_set_sink (progress_sink_fn fn, void *opaque);

/* ---- worker threads (workers.c) -------------------------------------- */

/* The first error of a pool of workers: workers call first_error_record()
 * when they fail (it keeps the calling thread's last error if it is the
 * first), poll first_error_failed() to stop early, and the coordinator
 * calls first_error_restore() to make it its own last error. */
struct first_error {
  pthread_mutex_t lock;
  _Atomic bool failed;
  int err;
  char msg[1024];
};
void first_error_init (struct first_error *fe);
void first_error_destroy (struct first_error *fe);
void first_error_record (struct first_error *fe);
static inline bool first_error_failed (struct first_error *fe)
{
  return atomic_load (&fe->failed);
}
void first_error_restore (struct first_error *fe);

/* Run fn(arg) on n threads (1..64) and wait for all; if no thread can be
 * started, runs fn(arg) on the caller's. */
void run_workers (int n, void *(*fn) (void *), void *arg);

/* ---- processes (spawn.c) ---------------------------------------------- */

/* The nbdkit plugin to load.  A build for testing: $BOOTBACK_NBDKIT_PLUGIN,
 * else the plugin of the build tree this program runs from
 * (PROGDIR/../../nbd-plugin/).  Otherwise, and in an installed build always,
 * "bootback" (the installed plugin, found by nbdkit). */
void bootback_plugin_path (char *buf, size_t len);

/* A pipe (both ends close-on-exec), then fork: the child's pid (0 in the
 * child), or -1 with the error set and both ends closed. */
pid_t fork_with_pipe (int pfd[2]);

/* Start argv (searched in PATH) with stdin from /dev/null and stdout and
 * stderr into a pipe; returns the pipe's read end (close-on-exec) and sets
 * *pid, or -1 with the error set.  The caller reads to EOF and waits.
 * SPAWN_DIE_WITH_PARENT: the child gets SIGKILL if the caller dies. */
#define SPAWN_DIE_WITH_PARENT 1u
/* SPAWN_NEW_GROUP: the child leads a process group of its own (so
 * everything it starts can be killed with it). */
#define SPAWN_NEW_GROUP 2u
/* SPAWN_KEEP_SECRETS: the child keeps the secrets of the environment
 * (env_without_secrets); only for what opens the repository (nbdkit with
 * the plugin, bootback itself).  Without it they are dropped. */
#define SPAWN_KEEP_SECRETS 4u
int spawn_output (char *const argv[], unsigned flags, pid_t *pid);

/* extra (NULL-terminated, may be NULL) then this process's environment
 * without its secrets (the repository's passphrases and key files, the
 * S3 credentials), in a new NULL-terminated array (free the array,
 * not the strings).  Built before fork: the child of a threaded process
 * must not allocate.  A program bootback runs for itself (qemu-img,
 * iproute2) or for the user (a hook, a lab's script check) needs none. */
char **env_without_secrets (char *const extra[]);
/* In a child between fork and exec: every descriptor from 3 up is made
 * close-on-exec, except those an argument names as /proc/self/fd/N (an
 * open file handed on by name, as import pins its image).  What bootback
 * holds open (S3 connections, curl's socket pairs, the catalog, the
 * repository's directories) does not reach the programs it runs.  Only
 * async-signal-safe calls. */
void child_fds_for_exec (char *const argv[]);
/* In a child between fork and exec: write "what name: description of
 * errnum\n" (name NULL: "what: ...") to fd, with write(2) only
 * (async-signal-safe, unlike stdio and strerror, which may take locks or
 * allocate: the child of a threaded process must not). */
void child_say (int fd, const char *what, const char *name, int errnum);
/* In such a child: the decimal digits of n (>= 0) written over the
 * spaces at the end of buf ("LISTEN_PID=" and 20 spaces), NUL-terminated:
 * a value known only in the child put into an environment built before
 * fork.  Async-signal-safe. */
void child_put_number (char *buf, long n);
/* Drop the same from this process's own environment, before it starts
 * what must not see them (what reads a guest's file system). */
void env_unset_secrets (void);
/* Does this process's environment hold one of them (then secrets_held)? */
bool env_has_secrets (void);

/* Run argv, wait, capture up to len-1 bytes of stdout+stderr into out
 * (NUL-terminated, may be NULL).  Returns the exit status (0..255), or -1
 * if it could not run (error set). */
int run_command (char *const argv[], char *out, size_t len);

/* run_command for a program the user names (a hook): it runs in a process
 * group of its own, and if it has not ended after timeout seconds the
 * whole group is killed and -1 returned ("did not finish within N s"). */
int run_command_timeout (char *const argv[], char *out, size_t len, int timeout);
/* run_command_timeout with spawn_output's flags (SPAWN_KEEP_SECRETS). */
int run_command_flags (char *const argv[], char *out, size_t len, int timeout,
                       unsigned flags);

/* True if a server accepts connections on the unix socket path. */
bool unix_socket_serves (const char *path);

/* ---- process identity (pid.c) ----------------------------------------- */

/* Before bootback signals a process it started earlier (from a pid file or
 * a recorded pid), it checks the pid still names that process: see pid.c.
 * Start time of pid, clock ticks since boot (/proc/PID/stat field 22); 0
 * if there is no such process. */
unsigned long long pid_start_time (pid_t pid);
/* True if pid is alive (not a zombie), its command line contains needle
 * (NULL: anything), and start is 0 or its start time. */
bool pid_matches (pid_t pid, unsigned long long start, const char *needle);
/* The pid of a pid file "PID" or "PID START" (*start: START, 0 if absent;
 * start may be NULL); 0 if the file is missing or malformed. */
pid_t pid_file_read (const char *path, unsigned long long *start);
/* After a program wrote its pid to path: check that process's command line
 * has needle and rewrite the file "PID START".  -1 with error set if not. */
int pid_file_stamp (const char *path, const char *needle);
/* If pid_matches (pid, start, needle): SIGTERM, wait up to secs for it to
 * exit, then SIGKILL (and reap it if it is a child).  1 if it was
 * signalled, 0 if no such process matched (nothing sent). */
int pid_stop (pid_t pid, unsigned long long start, const char *needle,
              double secs);

#endif /* BOOTBACK_UTIL_H */
