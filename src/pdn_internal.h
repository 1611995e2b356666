/* Declarations shared by the shim's C files (not part of the API). */
#ifndef PDN_INTERNAL_H
#define PDN_INTERNAL_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>

#include "pdn_api.h"

#ifndef PDN_EXIT_GUARD
#define PDN_EXIT_GUARD 0   /* set by CMakeLists.txt: 1 where darknet's calls are wrapped at link time */
#endif

#if defined(_MSC_VER)
#define PDN_THREAD_LOCAL __declspec(thread)
#define PDN_EXPORT __declspec(dllexport)
#else
#define PDN_THREAD_LOCAL _Thread_local
#define PDN_EXPORT __attribute__((visibility("default")))
#endif

/* ---- errors (per thread) ---- */
void pdn_clear_error(void);
void pdn_set_error(int kind, const char *fmt, ...);

/* ---- the exit guard ----
 * While a guard is active on a thread, darknet's exit(), error() and file_error() on that thread longjmp back to
 * the setjmp of the guard instead of ending the process.  Use:
 *
 *     pdn_guard g;
 *     pdn_guard_enter(&g, PDN_ERR_CONFIG);
 *     if (setjmp(g.env)) { ...g.failed_kind, g.message...; return error; }   // the guard is already left here
 *     ...darknet calls...
 *     pdn_guard_leave(&g);
 *
 * Locals changed between setjmp and a longjmp and read afterwards must be volatile.  Memory darknet allocated
 * before it gave up is freed only where a tracker (below) was active. */
typedef struct pdn_guard {
    jmp_buf env;
    struct pdn_guard *prev;
    int kind;                  /* error kind to report, given the phase the caller is in */
    int failed_kind;           /* set on failure */
    char message[1024];        /* set on failure */
    int count_fread;           /* while set, fread() bytes are counted below */
    uint64_t fread_requested;
    uint64_t fread_got;
} pdn_guard;

void pdn_guard_enter(pdn_guard *guard, int kind);
void pdn_guard_leave(pdn_guard *guard);
int pdn_exit_guard_available(void);

/* While frozen, darknet's own srand() calls do nothing (make_yolo_layer reseeds with time(0), which made
 * "seeded" initial weights differ after the first [yolo] layer).  Only where srand is wrapped at link time
 * (PDN_EXIT_GUARD); elsewhere a no-op.  Callers hold the load lock. */
void pdn_freeze_srand(int frozen);

/* ---- memory darknet allocates while a guarded call may still fail ----
 * darknet's parser gives up with exit() half-way through building a network; what it had allocated (tens of MB
 * for a large network) has no owner after the longjmp.  While a tracker is active on a thread, every malloc,
 * calloc, realloc, free, fopen and fclose of that thread is recorded (link-time wraps, Linux); pdn_track_end(t, 1)
 * frees and closes whatever is still live, pdn_track_end(t, 0) forgets it (the call succeeded and owns it).
 * Without the wraps (PDN_EXIT_GUARD 0) trackers record nothing and the memory of a failed call is leaked. */
typedef struct pdn_tracker {
    struct pdn_tracker *prev;
    void **slots;        /* open addressing; NULL: empty, PDN_TRACK_TOMBSTONE: removed */
    unsigned char *kinds;
    size_t capacity;
    size_t used;         /* live entries and tombstones */
    size_t live;
    int overflowed;      /* the table could not grow: some allocations went unrecorded (leaked on failure) */
} pdn_tracker;

void pdn_track_begin(pdn_tracker *tracker);
void pdn_track_end(pdn_tracker *tracker, int release);

/* ---- capture of darknet's stdout/stderr chatter ----
 * Where the linker wraps darknet's output calls (PDN_EXIT_GUARD, Linux), a capture is per thread: what darknet
 * prints on the capturing thread goes into a buffer; other threads' output, Python's included, is never touched.
 * Elsewhere it falls back to redirecting the process's fd 1 and 2 (callers then hold the load lock). */
#define PDN_CAPTURE_TAIL 16384
typedef struct pdn_capture {
    int active;
#if PDN_EXIT_GUARD
    struct pdn_capture *prev;
    uint64_t total;                  /* bytes darknet printed; the last PDN_CAPTURE_TAIL of them are in ring */
    char ring[PDN_CAPTURE_TAIL];
#else
    int saved_stdout;
    int saved_stderr;
    FILE *sink;
#endif
} pdn_capture;

void pdn_capture_begin(pdn_capture *capture);
/* Ends the capture; copies the last lines of what was captured into tail (may be NULL). */
void pdn_capture_end(pdn_capture *capture, char *tail, size_t tail_size);

/* ---- time ---- */
double pdn_now_ms(void);

#endif
