/* Declarations shared by the shim's C files (not part of the API). */
#ifndef PDN_INTERNAL_H
#define PDN_INTERNAL_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>

#include "pdn_api.h"

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
 * before it gave up is leaked: darknet has no way to say what it had built. */
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

/* ---- capture of darknet's stdout/stderr chatter (process-wide; callers hold the load lock) ---- */
typedef struct {
    int active;
    int saved_stdout;
    int saved_stderr;
    FILE *sink;
} pdn_capture;

void pdn_capture_begin(pdn_capture *capture);
/* Restores stdout/stderr; copies the last lines of what was captured into tail (may be NULL). */
void pdn_capture_end(pdn_capture *capture, char *tail, size_t tail_size);

/* ---- time ---- */
double pdn_now_ms(void);

#endif
