/* Declarations shared by the shim's C files (not part of the API). */
#ifndef PDN_INTERNAL_H
#define PDN_INTERNAL_H

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "pdn_api.h"

#if defined(_MSC_VER)
#define PDN_THREAD_LOCAL __declspec(thread)
#else
#define PDN_THREAD_LOCAL _Thread_local
#endif
#if defined(_WIN32)   /* MSVC and MinGW: a DLL exports what is marked, and only that once anything is */
#define PDN_EXPORT __declspec(dllexport)
#else
#define PDN_EXPORT __attribute__((visibility("default")))
#endif

#if defined(_WIN32)
#include <sys/stat.h>
#include <wchar.h>
/* Paths are UTF-8 (as pydarknet passes them); Windows' narrow C functions would read them in the ANSI code page.
 * pdn_guard.c: a malloc'd UTF-16 copy, NULL where the narrow call is right (plain ASCII, not UTF-8); _stat64. */
wchar_t *pdn_utf8_to_wide(const char *s);
int pdn_stat_utf8(const char *path, struct _stat64 *st);
#endif

/* ---- errors (per thread) ---- */
void pdn_clear_error(void);
void pdn_set_error(int kind, const char *fmt, ...);

/* ---- the exit guard ----
 * While a guard is active on a thread, darknet's exit(), error() and file_error() on that thread longjmp back to
 * the setjmp of the guard instead of ending the process (src/pdn_hooks.h routes darknet's calls here).  Use:
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
    char reason[256];          /* what darknet last passed to perror() (its error() does, just before exit()) */
    int count_fread;           /* while set, fread() bytes are counted below */
    uint64_t fread_requested;
    uint64_t fread_got;
} pdn_guard;

void pdn_guard_enter(pdn_guard *guard, int kind);
void pdn_guard_leave(pdn_guard *guard);
int pdn_exit_guard_available(void);

/* While frozen, darknet's own srand() calls do nothing (make_yolo_layer reseeds with time(0), which made
 * "seeded" initial weights differ after the first [yolo] layer).  Callers hold the load lock. */
void pdn_freeze_srand(int frozen);

/* ---- memory darknet allocates while a guarded call may still fail ----
 * darknet's parser gives up with exit() half-way through building a network; what it had allocated (tens of MB
 * for a large network) has no owner after the longjmp.  While a tracker is active on a thread, every malloc,
 * calloc, realloc, free, fopen and fclose darknet's C code makes on that thread is recorded (the hooks of
 * pdn_hooks.h; the shim's own calls are not, so the shim must not free() what darknet allocated while tracking);
 * pdn_track_end(t, 1) frees and closes whatever is still live, pdn_track_end(t, 0) forgets it (the call succeeded
 * and owns it).  nvcc's .cu files are not hooked: what they allocate on a failed load is not freed. */
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
 * Per thread: what darknet prints to stdout or stderr on the capturing thread goes into a buffer; other threads'
 * output, Python's included, is never touched. */
#define PDN_CAPTURE_TAIL 16384
typedef struct pdn_capture {
    int active;
    struct pdn_capture *prev;
    uint64_t total;                  /* bytes darknet printed; the last PDN_CAPTURE_TAIL of them are in ring */
    char ring[PDN_CAPTURE_TAIL];
} pdn_capture;

void pdn_capture_begin(pdn_capture *capture);
/* Ends the capture; copies the last lines of what was captured into tail (may be NULL). */
void pdn_capture_end(pdn_capture *capture, char *tail, size_t tail_size);

/* ---- training: a stop request, acted on after the iteration in progress (pdn_train_hooks.c) ---- */
extern volatile sig_atomic_t pdn_train_stop_requested;
extern char pdn_train_interrupted_weights[4096];

/* ---- time ---- */
double pdn_now_ms(void);

#endif
