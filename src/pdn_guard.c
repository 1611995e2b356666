/*
 * Keeping darknet from ending the Python process, and cleaning up after it when it gives up.
 *
 * darknet reports most errors by printing and calling exit(): error() and file_error() in utils.c, which
 * everything else calls (a malformed cfg, a missing file, a CUDA failure, an allocation failure).  src/pdn_hooks.h,
 * force-included into each of darknet's C files, routes those calls (and fread, srand, the allocator, fopen/fclose
 * and the stdout/stderr writers) into the pdn_hook_* functions below, on every platform and compiler.  With a
 * guard active on the calling thread they record the message and longjmp back to the guarded call in pdn_api.c;
 * without one (another thread, or darknet's own executable, built from the same objects) they behave exactly as
 * the functions they stand for.
 *
 * This file is not compiled with pdn_hooks.h: a plain malloc() here is the C library's.  Where darknet's call
 * must still be recorded (the x*alloc hooks), the pdn_hook_* function is called by name.
 *
 * fread() bytes are counted so a truncated file is caught: darknet's load_weights() ignores short reads, so a
 * truncated file would otherwise load silently with zeros or garbage in its last layers.
 */
#include "pdn_internal.h"
#define PDN_HOOKS_NO_MACROS   /* the hooks' declarations only: here malloc() is the C library's */
#include "pdn_hooks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(_WIN32)
#include <windows.h>
#endif

/* darknet's own (utils.c), called where no guard is active */
void error(const char *msg, const char *filename, const char *funcname, int line);
void file_error(const char *s);
void *xmalloc_location(size_t size, const char *filename, const char *funcname, int line);
void *xcalloc_location(size_t nmemb, size_t size, const char *filename, const char *funcname, int line);
void *xrealloc_location(void *ptr, size_t size, const char *filename, const char *funcname, int line);

static PDN_THREAD_LOCAL pdn_guard *current_guard;

void pdn_guard_enter(pdn_guard *guard, int kind)
{
    memset(guard->message, 0, sizeof guard->message);
    guard->reason[0] = '\0';
    guard->prev = current_guard;
    guard->kind = kind;
    guard->failed_kind = PDN_OK;
    guard->count_fread = 0;
    guard->fread_requested = 0;
    guard->fread_got = 0;
    current_guard = guard;
}

void pdn_guard_leave(pdn_guard *guard)
{
    if (current_guard == guard) current_guard = guard->prev;
}

/* darknet's (utils.c): one allocation through darknet's own code */
char *copy_string(char *s);

/* Whether darknet's objects really call the hooks (built with pdn_hooks.h force-included): a darknet allocation
 * made under a tracker must have been recorded. */
int pdn_exit_guard_available(void)
{
    static volatile int answer = -1;
    if (answer < 0) {
        pdn_tracker tracker;
        char *copy;
        pdn_track_begin(&tracker);
        copy = copy_string((char *)"pydarknet");
        answer = copy && tracker.live == 1;
        pdn_track_end(&tracker, 0);
        free(copy);
    }
    return answer;
}

double pdn_now_ms(void)
{
#if defined(_WIN32)
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return 1000.0 * (double)now.QuadPart / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
#endif
}

/* ---- srand: frozen while a seeded network is parsed ---- */
static int srand_frozen;

void pdn_hook_srand(unsigned int seed)
{
    if (!srand_frozen) srand(seed);
}

void pdn_freeze_srand(int frozen) { srand_frozen = frozen; }

/* ---- exit, error, file_error, the checked allocations, fread ---- */
/* Leaves the active guard and jumps back to its setjmp. */
static void guard_fail(int kind, const char *message)
{
    pdn_guard *guard = current_guard;
    snprintf(guard->message, sizeof guard->message, "%s", message);
    guard->failed_kind = kind ? kind : guard->kind;
    current_guard = guard->prev;
    longjmp(guard->env, 1);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *backslash = strrchr(path, '\\');
    if (backslash > slash) slash = backslash;
    return slash ? slash + 1 : path;
}

static int kind_of_message(const char *msg)
{
    if (strstr(msg, "alloc error") || strstr(msg, "out of memory")) return PDN_ERR_MEMORY;
    if (strstr(msg, "CUDA") || strstr(msg, "cuDNN") || strstr(msg, "CUDNN") || strstr(msg, "cuBLAS")) return PDN_ERR_CUDA;
    return 0;
}

void pdn_hook_exit(int status)
{
    pdn_guard *guard = current_guard;
    if (guard) {
        char message[sizeof guard->reason + 64];
        /* darknet's error() says why with perror(msg) just before it exits, also where its callers cannot be
         * hooked (inside utils.c, or nvcc's .cu files): keep its words */
        if (guard->reason[0])
            snprintf(message, sizeof message, "%s (darknet gave up, exit status %d)", guard->reason, status);
        else
            snprintf(message, sizeof message, "darknet gave up (exit status %d)", status);
        guard_fail(kind_of_message(guard->reason), message);
    }
    exit(status);
}

void pdn_hook_error(const char *msg, const char *filename, const char *funcname, int line)
{
    if (current_guard) {
        char message[1024];
        snprintf(message, sizeof message, "%s (darknet %s:%d, %s())", msg, base_name(filename), line, funcname);
        guard_fail(kind_of_message(msg), message);
    }
    error(msg, filename, funcname, line);
}

void pdn_hook_file_error(const char *s)
{
    if (current_guard) {
        char message[1024];
        snprintf(message, sizeof message, "darknet could not open file: %s", s);
        guard_fail(PDN_ERR_FILE, message);
    }
    file_error(s);
}

/* darknet's checked allocations (xmalloc/xcalloc/xrealloc) report failure through error() inside utils.c: check
 * here, so running out of memory is a MemoryError, not "bad cfg". */
static void allocation_failed(const char *what, size_t bytes, const char *filename, const char *funcname, int line)
{
    char message[512];
    /* darknet computes sizes in int: a negative one arrives here as an absurd size_t */
    snprintf(message, sizeof message, "out of memory: darknet's %s of %llu bytes failed%s (darknet %s:%d, %s())",
             what, (unsigned long long)bytes,
             bytes > ((size_t)1 << 48) ? ", a size that overflowed: the network's layers are too large" : "",
             base_name(filename), line, funcname);
    guard_fail(PDN_ERR_MEMORY, message);
}

/* Each allocates through the recording hook; only on failure without a guard does darknet's own function run
 * (it tries once more, then reports and exits as darknet does). */
void *pdn_hook_xmalloc_location(size_t size, const char *filename, const char *funcname, int line)
{
    void *ptr = pdn_hook_malloc(size);
    if (!ptr && current_guard) allocation_failed("malloc", size, filename, funcname, line);
    return ptr ? ptr : xmalloc_location(size, filename, funcname, line);
}

void *pdn_hook_xcalloc_location(size_t nmemb, size_t size, const char *filename, const char *funcname, int line)
{
    void *ptr = pdn_hook_calloc(nmemb, size);
    if (!ptr && current_guard) allocation_failed("calloc", nmemb * size, filename, funcname, line);
    return ptr ? ptr : xcalloc_location(nmemb, size, filename, funcname, line);
}

void *pdn_hook_xrealloc_location(void *ptr, size_t size, const char *filename, const char *funcname, int line)
{
    void *grown = pdn_hook_realloc(ptr, size);
    if (!grown && current_guard) allocation_failed("realloc", size, filename, funcname, line);
    return grown ? grown : xrealloc_location(ptr, size, filename, funcname, line);
}

size_t pdn_hook_fread(void *ptr, size_t size, size_t n, FILE *stream)
{
    size_t got = fread(ptr, size, n, stream);
    pdn_guard *guard = current_guard;
    if (guard && guard->count_fread) {
        guard->fread_requested += (uint64_t)size * n;
        guard->fread_got += (uint64_t)size * got;
    }
    return got;
}

/* ---- memory tracking (see pdn_internal.h) ---- */
#define PDN_TRACK_TOMBSTONE ((void *)1)
enum { TRACK_MEMORY = 1, TRACK_FILE = 2 };
static PDN_THREAD_LOCAL pdn_tracker *current_tracker;

void pdn_track_begin(pdn_tracker *tracker)
{
    memset(tracker, 0, sizeof *tracker);
    tracker->prev = current_tracker;
    current_tracker = tracker;
}

static size_t slot_of(const pdn_tracker *t, const void *ptr)
{
    uint64_t h = (uint64_t)(uintptr_t)ptr;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (t->capacity - 1);
}

static int track_grow(pdn_tracker *t)
{
    size_t capacity = t->capacity ? t->capacity * 2 : 1024, i;
    void **old_slots = t->slots;
    unsigned char *old_kinds = t->kinds;
    size_t old_capacity = t->capacity;
    void **slots = (void **)calloc(capacity, sizeof *slots);
    unsigned char *kinds = (unsigned char *)calloc(capacity, 1);
    if (!slots || !kinds) {
        free(slots);
        free(kinds);
        return -1;
    }
    t->slots = slots;
    t->kinds = kinds;
    t->capacity = capacity;
    t->used = t->live;
    for (i = 0; i < old_capacity; ++i) {
        if (old_slots[i] && old_slots[i] != PDN_TRACK_TOMBSTONE) {
            size_t j = slot_of(t, old_slots[i]);
            while (slots[j]) j = (j + 1) & (capacity - 1);
            slots[j] = old_slots[i];
            kinds[j] = old_kinds[i];
        }
    }
    free(old_slots);
    free(old_kinds);
    return 0;
}

static void track_add(pdn_tracker *t, void *ptr, int kind)
{
    size_t i;
    if (!ptr) return;
    if ((t->used + 1) * 2 > t->capacity && track_grow(t)) {
        t->overflowed = 1;
        return;
    }
    i = slot_of(t, ptr);
    while (t->slots[i] && t->slots[i] != PDN_TRACK_TOMBSTONE) i = (i + 1) & (t->capacity - 1);
    if (!t->slots[i]) t->used++;
    t->slots[i] = ptr;
    t->kinds[i] = (unsigned char)kind;
    t->live++;
}

static void track_remove(pdn_tracker *t, void *ptr)
{
    size_t i;
    if (!ptr || !t->capacity) return;
    i = slot_of(t, ptr);
    while (t->slots[i]) {
        if (t->slots[i] == ptr) {
            t->slots[i] = PDN_TRACK_TOMBSTONE;
            t->live--;
            return;
        }
        i = (i + 1) & (t->capacity - 1);
    }
}

void pdn_track_end(pdn_tracker *tracker, int release)
{
    size_t i;
    if (current_tracker == tracker) current_tracker = tracker->prev;
    for (i = 0; release && i < tracker->capacity; ++i) {
        void *ptr = tracker->slots[i];
        if (!ptr || ptr == PDN_TRACK_TOMBSTONE) continue;
        if (tracker->kinds[i] == TRACK_FILE) fclose((FILE *)ptr);
        else free(ptr);
    }
    free(tracker->slots);
    free(tracker->kinds);
    tracker->slots = NULL;
    tracker->kinds = NULL;
    tracker->capacity = tracker->used = tracker->live = 0;
}

void *pdn_hook_malloc(size_t size)
{
    void *ptr = malloc(size);
    if (current_tracker) track_add(current_tracker, ptr, TRACK_MEMORY);
    return ptr;
}

void *pdn_hook_calloc(size_t nmemb, size_t size)
{
    void *ptr = calloc(nmemb, size);
    if (current_tracker) track_add(current_tracker, ptr, TRACK_MEMORY);
    return ptr;
}

/* The old block's address is only a key into the table, never dereferenced after realloc() */
#if defined(__GNUC__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
void *pdn_hook_realloc(void *ptr, size_t size)
{
    void *moved = realloc(ptr, size);
    if (current_tracker && (moved || size == 0)) {   /* realloc(p, 0) frees p; a failed realloc keeps it */
        track_remove(current_tracker, ptr);
        track_add(current_tracker, moved, TRACK_MEMORY);
    }
    return moved;
}
#if defined(__GNUC__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

void pdn_hook_free(void *ptr)
{
    if (current_tracker) track_remove(current_tracker, ptr);
    free(ptr);
}

#if defined(_WIN32)
/* darknet's paths are narrow strings, which Windows' C runtime reads in the ANSI code page (cp1252 and the like),
 * while pydarknet passes them UTF-8 encoded (os.fsencode, PEP 529): C:\Users\Jos\u00e9\yolo.cfg would not be
 * found.  A path that is valid UTF-8 and not plain ASCII is converted to UTF-16 here (malloc'd); NULL for plain
 * ASCII (the same either way) and for what is not UTF-8 (a path in the ANSI code page, from darknet's own
 * executable's command line or Python's legacy mbcs mode), which the callers use as before. */
wchar_t *pdn_utf8_to_wide(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    wchar_t *wide;
    int n;
    while (*p && *p < 0x80) ++p;
    if (!*p) return NULL;
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) return NULL;
    wide = (wchar_t *)malloc(sizeof(wchar_t) * (size_t)n);
    if (wide && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, wide, n) != n) {
        free(wide);
        wide = NULL;
    }
    return wide;
}

static FILE *fopen_utf8(const char *path, const char *mode)
{
    wchar_t *wide_path = pdn_utf8_to_wide(path), wide_mode[16];
    FILE *stream;
    size_t i;
    if (!wide_path) return fopen(path, mode);
    for (i = 0; mode[i] && i + 1 < sizeof wide_mode / sizeof *wide_mode; ++i) wide_mode[i] = (wchar_t)mode[i];
    wide_mode[i] = L'\0';
    stream = _wfopen(wide_path, wide_mode);
    free(wide_path);
    return stream;
}

int pdn_stat_utf8(const char *path, struct _stat64 *st)
{
    wchar_t *wide = pdn_utf8_to_wide(path);
    int result = wide ? _wstat64(wide, st) : _stat64(path, st);
    free(wide);
    return result;
}
#else
#define fopen_utf8 fopen   /* POSIX paths are bytes */
#endif

FILE *pdn_hook_fopen(const char *path, const char *mode)
{
    FILE *stream = fopen_utf8(path, mode);
    if (current_tracker) track_add(current_tracker, stream, TRACK_FILE);
    return stream;
}

#if defined(_WIN32)
int pdn_hook_fopen_s(FILE **stream, const char *path, const char *mode)
{
    *stream = pdn_hook_fopen(path, mode);
    return *stream ? 0 : errno;
}
#endif

int pdn_hook_fclose(FILE *stream)
{
    if (current_tracker) track_remove(current_tracker, stream);
    return fclose(stream);
}

/* ---- output capture: darknet prints a layer table and more while loading; keep it for error messages ----
 * Per thread: darknet's printf/fprintf/puts/... to stdout or stderr on a capturing thread land in its ring;
 * other threads' output, Python's included, is never touched. */
static PDN_THREAD_LOCAL pdn_capture *current_capture;

void pdn_capture_begin(pdn_capture *capture)
{
    capture->active = 1;
    capture->total = 0;
    capture->prev = current_capture;
    current_capture = capture;
}

void pdn_capture_end(pdn_capture *capture, char *tail, size_t tail_size)
{
    if (tail && tail_size) tail[0] = '\0';
    if (!capture->active) return;
    if (current_capture == capture) current_capture = capture->prev;
    capture->active = 0;
    if (tail && tail_size > 1) {
        uint64_t keep = capture->total < PDN_CAPTURE_TAIL ? capture->total : PDN_CAPTURE_TAIL;
        uint64_t i;
        if (keep > tail_size - 1) keep = tail_size - 1;
        for (i = 0; i < keep; ++i)
            tail[i] = capture->ring[(capture->total - keep + i) % PDN_CAPTURE_TAIL];
        tail[keep] = '\0';
    }
}

static pdn_capture *capturing(FILE *stream)
{
    return current_capture && (stream == stdout || stream == stderr) ? current_capture : NULL;
}

static void capture_append(pdn_capture *capture, const char *bytes, size_t n)
{
    size_t i;
    if (n > PDN_CAPTURE_TAIL) {   /* only the tail is kept */
        capture->total += n - PDN_CAPTURE_TAIL;
        bytes += n - PDN_CAPTURE_TAIL;
        n = PDN_CAPTURE_TAIL;
    }
    for (i = 0; i < n; ++i) capture->ring[(capture->total + i) % PDN_CAPTURE_TAIL] = bytes[i];
    capture->total += n;
}

static int capture_vprintf(pdn_capture *capture, const char *fmt, va_list args)
{
    char small[1024];
    va_list copy;
    int n;
    va_copy(copy, args);
    n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0) return n;
    if ((size_t)n < sizeof small) {
        capture_append(capture, small, (size_t)n);
    } else {
        char *big = (char *)malloc((size_t)n + 1);
        if (!big) return -1;
        vsnprintf(big, (size_t)n + 1, fmt, args);
        capture_append(capture, big, (size_t)n);
        free(big);
    }
    return n;
}

int pdn_hook_vfprintf(FILE *stream, const char *fmt, va_list args)
{
    pdn_capture *capture = capturing(stream);
    return capture ? capture_vprintf(capture, fmt, args) : vfprintf(stream, fmt, args);
}

int pdn_hook_vprintf(const char *fmt, va_list args) { return pdn_hook_vfprintf(stdout, fmt, args); }

int pdn_hook_fprintf(FILE *stream, const char *fmt, ...)
{
    va_list args;
    int n;
    va_start(args, fmt);
    n = pdn_hook_vfprintf(stream, fmt, args);
    va_end(args);
    return n;
}

int pdn_hook_printf(const char *fmt, ...)
{
    va_list args;
    int n;
    va_start(args, fmt);
    n = pdn_hook_vfprintf(stdout, fmt, args);
    va_end(args);
    return n;
}

size_t pdn_hook_fwrite(const void *ptr, size_t size, size_t n, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    if (!capture) return fwrite(ptr, size, n, stream);
    capture_append(capture, (const char *)ptr, size * n);
    return n;
}

int pdn_hook_fputs(const char *s, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    if (!capture) return fputs(s, stream);
    capture_append(capture, s, strlen(s));
    return 1;
}

int pdn_hook_puts(const char *s)
{
    pdn_capture *capture = capturing(stdout);
    if (!capture) return puts(s);
    capture_append(capture, s, strlen(s));
    capture_append(capture, "\n", 1);
    return 1;
}

int pdn_hook_fputc(int c, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    char byte = (char)c;
    if (!capture) return fputc(c, stream);
    capture_append(capture, &byte, 1);
    return (unsigned char)c;
}

int pdn_hook_putchar(int c) { return pdn_hook_fputc(c, stdout); }

void pdn_hook_perror(const char *s)
{
    pdn_capture *capture = capturing(stderr);
    pdn_guard *guard = current_guard;
    int saved_errno = errno;
    const char *reason;
    if (guard && s && *s) snprintf(guard->reason, sizeof guard->reason, "%s", s);   /* see pdn_hook_exit */
    errno = saved_errno;
    if (!capture) {
        perror(s);
        return;
    }
    reason = strerror(saved_errno);
    if (s && *s) {
        capture_append(capture, s, strlen(s));
        capture_append(capture, ": ", 2);
    }
    capture_append(capture, reason, strlen(reason));
    capture_append(capture, "\n", 1);
}
