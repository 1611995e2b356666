/*
 * Keeping darknet from ending the Python process.
 *
 * darknet reports most errors by printing and calling exit(): error() and file_error() in utils.c, which
 * everything else calls (a malformed cfg, a missing file, a CUDA failure, an allocation failure).  On Linux the
 * library is linked with `--wrap=exit,--wrap=error,--wrap=file_error` (CMakeLists.txt), so darknet's calls land in
 * the __wrap_* functions below.  With a guard active on the calling thread they record the message and longjmp
 * back to the guarded call in pdn_api.c; without one (another thread, or darknet's own executable code paths)
 * they behave exactly as darknet's originals.
 *
 * `--wrap=fread` lets the weights loader's reads be counted: darknet's load_weights() ignores short reads, so a
 * truncated file would otherwise load silently with zeros or garbage in its last layers.
 */
#include "pdn_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(_WIN32)
#include <io.h>
#include <windows.h>
#define pdn_dup _dup
#define pdn_dup2 _dup2
#define pdn_close _close
#define pdn_fileno _fileno
#else
#include <unistd.h>
#define pdn_dup dup
#define pdn_dup2 dup2
#define pdn_close close
#define pdn_fileno fileno
#endif

static PDN_THREAD_LOCAL pdn_guard *current_guard;
static PDN_THREAD_LOCAL int last_error_kind;
static PDN_THREAD_LOCAL char last_error[4096];

PDN_EXPORT int pdn_last_error_kind(void) { return last_error_kind; }
PDN_EXPORT const char *pdn_last_error(void) { return last_error; }

void pdn_clear_error(void)
{
    last_error_kind = PDN_OK;
    last_error[0] = '\0';
}

void pdn_set_error(int kind, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    last_error_kind = kind;
}

void pdn_guard_enter(pdn_guard *guard, int kind)
{
    memset(guard->message, 0, sizeof guard->message);
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

int pdn_exit_guard_available(void) { return PDN_EXIT_GUARD; }

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

#if PDN_EXIT_GUARD
static int srand_frozen;

void __real_srand(unsigned int seed);

void __wrap_srand(unsigned int seed)
{
    if (!srand_frozen) __real_srand(seed);
}

void pdn_freeze_srand(int frozen) { srand_frozen = frozen; }
#else
void pdn_freeze_srand(int frozen) { (void)frozen; }
#endif

#if PDN_EXIT_GUARD
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

void __real_exit(int status);
void __real_error(const char *msg, const char *filename, const char *funcname, int line);
void __real_file_error(const char *s);
size_t __real_fread(void *ptr, size_t size, size_t n, FILE *stream);
void *__real_xmalloc_location(size_t size, const char *filename, const char *funcname, int line);
void *__real_xcalloc_location(size_t nmemb, size_t size, const char *filename, const char *funcname, int line);
void *__real_xrealloc_location(void *ptr, size_t size, const char *filename, const char *funcname, int line);

void __wrap_exit(int status)
{
    if (current_guard) {
        char message[64];
        snprintf(message, sizeof message, "darknet gave up (exit status %d)", status);
        guard_fail(0, message);
    }
    __real_exit(status);
}

void __wrap_error(const char *msg, const char *filename, const char *funcname, int line)
{
    if (current_guard) {
        char message[1024];
        snprintf(message, sizeof message, "%s (darknet %s:%d, %s())", msg, base_name(filename), line, funcname);
        guard_fail(kind_of_message(msg), message);
    }
    __real_error(msg, filename, funcname, line);
}

void __wrap_file_error(const char *s)
{
    if (current_guard) {
        char message[1024];
        snprintf(message, sizeof message, "darknet could not open file: %s", s);
        guard_fail(PDN_ERR_FILE, message);
    }
    __real_file_error(s);
}

/* darknet's checked allocations (xmalloc/xcalloc/xrealloc) report failure through an error() call inside utils.c,
 * which the link-time wrap cannot reach: check here, so running out of memory is a MemoryError, not "bad cfg". */
static void allocation_failed(const char *what, size_t bytes, const char *filename, const char *funcname, int line)
{
    char message[512];
    /* darknet computes sizes in int: a negative one arrives here as an absurd size_t */
    snprintf(message, sizeof message, "out of memory: darknet's %s of %zu bytes failed%s (darknet %s:%d, %s())", what,
             bytes, bytes > ((size_t)1 << 48) ? ", a size that overflowed: the network's layers are too large" : "",
             base_name(filename), line, funcname);
    guard_fail(PDN_ERR_MEMORY, message);
}

void *__wrap_xmalloc_location(size_t size, const char *filename, const char *funcname, int line)
{
    void *ptr = malloc(size);
    if (!ptr && current_guard) allocation_failed("malloc", size, filename, funcname, line);
    return ptr ? ptr : __real_xmalloc_location(size, filename, funcname, line);
}

void *__wrap_xcalloc_location(size_t nmemb, size_t size, const char *filename, const char *funcname, int line)
{
    void *ptr = calloc(nmemb, size);
    if (!ptr && current_guard) allocation_failed("calloc", nmemb * size, filename, funcname, line);
    return ptr ? ptr : __real_xcalloc_location(nmemb, size, filename, funcname, line);
}

void *__wrap_xrealloc_location(void *ptr, size_t size, const char *filename, const char *funcname, int line)
{
    void *grown = realloc(ptr, size);
    if (!grown && current_guard) allocation_failed("realloc", size, filename, funcname, line);
    return grown ? grown : __real_xrealloc_location(ptr, size, filename, funcname, line);
}

size_t __wrap_fread(void *ptr, size_t size, size_t n, FILE *stream)
{
    size_t got = __real_fread(ptr, size, n, stream);
    pdn_guard *guard = current_guard;
    if (guard && guard->count_fread) {
        guard->fread_requested += (uint64_t)size * n;
        guard->fread_got += (uint64_t)size * got;
    }
    return got;
}
#endif

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

#if PDN_EXIT_GUARD
void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
void __real_free(void *ptr);
FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *stream);

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
    void **slots = (void **)__real_calloc(capacity, sizeof *slots);
    unsigned char *kinds = (unsigned char *)__real_calloc(capacity, 1);
    if (!slots || !kinds) {
        __real_free(slots);
        __real_free(kinds);
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
    __real_free(old_slots);
    __real_free(old_kinds);
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
        if (tracker->kinds[i] == TRACK_FILE) __real_fclose((FILE *)ptr);
        else __real_free(ptr);
    }
    __real_free(tracker->slots);
    __real_free(tracker->kinds);
    tracker->slots = NULL;
    tracker->kinds = NULL;
    tracker->capacity = tracker->used = tracker->live = 0;
}

void *__wrap_malloc(size_t size)
{
    void *ptr = __real_malloc(size);
    if (current_tracker) track_add(current_tracker, ptr, TRACK_MEMORY);
    return ptr;
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
    void *ptr = __real_calloc(nmemb, size);
    if (current_tracker) track_add(current_tracker, ptr, TRACK_MEMORY);
    return ptr;
}

void *__wrap_realloc(void *ptr, size_t size)
{
    void *moved = __real_realloc(ptr, size);
    if (current_tracker && (moved || size == 0)) {   /* realloc(p, 0) frees p; a failed realloc keeps it */
        track_remove(current_tracker, ptr);
        track_add(current_tracker, moved, TRACK_MEMORY);
    }
    return moved;
}

void __wrap_free(void *ptr)
{
    if (current_tracker) track_remove(current_tracker, ptr);
    __real_free(ptr);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
    FILE *stream = __real_fopen(path, mode);
    if (current_tracker) track_add(current_tracker, stream, TRACK_FILE);
    return stream;
}

int __wrap_fclose(FILE *stream)
{
    if (current_tracker) track_remove(current_tracker, stream);
    return __real_fclose(stream);
}
#else
void pdn_track_end(pdn_tracker *tracker, int release)
{
    (void)release;
    if (current_tracker == tracker) current_tracker = tracker->prev;
}
#endif

/* ---- output capture: darknet prints a layer table and more while loading; keep it for error messages ---- */
#if PDN_EXIT_GUARD
/* Per thread: darknet's printf/fprintf/puts/... to stdout or stderr on a capturing thread land in its ring. */
static PDN_THREAD_LOCAL pdn_capture *current_capture;

int __real_vfprintf(FILE *stream, const char *fmt, va_list args);
size_t __real_fwrite(const void *ptr, size_t size, size_t n, FILE *stream);
int __real_fputc(int c, FILE *stream);
int __real_fputs(const char *s, FILE *stream);
int __real_puts(const char *s);
int __real_putchar(int c);
void __real_perror(const char *s);

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
        char *big = (char *)__real_malloc((size_t)n + 1);
        if (!big) return -1;
        vsnprintf(big, (size_t)n + 1, fmt, args);
        capture_append(capture, big, (size_t)n);
        __real_free(big);
    }
    return n;
}

int __wrap_vfprintf(FILE *stream, const char *fmt, va_list args)
{
    pdn_capture *capture = capturing(stream);
    return capture ? capture_vprintf(capture, fmt, args) : __real_vfprintf(stream, fmt, args);
}

int __wrap_vprintf(const char *fmt, va_list args) { return __wrap_vfprintf(stdout, fmt, args); }

int __wrap_fprintf(FILE *stream, const char *fmt, ...)
{
    va_list args;
    int n;
    va_start(args, fmt);
    n = __wrap_vfprintf(stream, fmt, args);
    va_end(args);
    return n;
}

int __wrap_printf(const char *fmt, ...)
{
    va_list args;
    int n;
    va_start(args, fmt);
    n = __wrap_vfprintf(stdout, fmt, args);
    va_end(args);
    return n;
}

size_t __wrap_fwrite(const void *ptr, size_t size, size_t n, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    if (!capture) return __real_fwrite(ptr, size, n, stream);
    capture_append(capture, (const char *)ptr, size * n);
    return n;
}

int __wrap_fputs(const char *s, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    if (!capture) return __real_fputs(s, stream);
    capture_append(capture, s, strlen(s));
    return 1;
}

int __wrap_puts(const char *s)
{
    pdn_capture *capture = capturing(stdout);
    if (!capture) return __real_puts(s);
    capture_append(capture, s, strlen(s));
    capture_append(capture, "\n", 1);
    return 1;
}

int __wrap_fputc(int c, FILE *stream)
{
    pdn_capture *capture = capturing(stream);
    char byte = (char)c;
    if (!capture) return __real_fputc(c, stream);
    capture_append(capture, &byte, 1);
    return (unsigned char)c;
}

int __wrap_putchar(int c) { return __wrap_fputc(c, stdout); }

void __wrap_perror(const char *s)
{
    pdn_capture *capture = capturing(stderr);
    const char *reason;
    if (!capture) {
        __real_perror(s);
        return;
    }
    reason = strerror(errno);
    if (s && *s) {
        capture_append(capture, s, strlen(s));
        capture_append(capture, ": ", 2);
    }
    capture_append(capture, reason, strlen(reason));
    capture_append(capture, "\n", 1);
}
#else
/* No link-time wraps here: redirect the process's fd 1 and 2 into a temporary file (callers hold the load lock) */
void pdn_capture_begin(pdn_capture *capture)
{
    capture->active = 0;
    fflush(stdout);
    fflush(stderr);
    capture->sink = tmpfile();
    if (!capture->sink) return;
    capture->saved_stdout = pdn_dup(1);
    capture->saved_stderr = pdn_dup(2);
    if (capture->saved_stdout < 0 || capture->saved_stderr < 0) {
        if (capture->saved_stdout >= 0) pdn_close(capture->saved_stdout);
        if (capture->saved_stderr >= 0) pdn_close(capture->saved_stderr);
        fclose(capture->sink);
        return;
    }
    pdn_dup2(pdn_fileno(capture->sink), 1);
    pdn_dup2(pdn_fileno(capture->sink), 2);
    capture->active = 1;
}

void pdn_capture_end(pdn_capture *capture, char *tail, size_t tail_size)
{
    if (tail && tail_size) tail[0] = '\0';
    if (!capture->active) return;
    fflush(stdout);
    fflush(stderr);
    pdn_dup2(capture->saved_stdout, 1);
    pdn_dup2(capture->saved_stderr, 2);
    pdn_close(capture->saved_stdout);
    pdn_close(capture->saved_stderr);
    capture->active = 0;
    if (tail && tail_size > 1) {
        long size;
        fseek(capture->sink, 0, SEEK_END);
        size = ftell(capture->sink);
        if (size > 0) {
            long start = size > (long)(tail_size - 1) ? size - (long)(tail_size - 1) : 0;
            size_t got;
            fseek(capture->sink, start, SEEK_SET);
            got = fread(tail, 1, tail_size - 1, capture->sink);
            tail[got] = '\0';
        }
    }
    fclose(capture->sink);
}
#endif
