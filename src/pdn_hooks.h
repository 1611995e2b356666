/*
 * Force-included into every one of darknet's C files (GCC/Clang/MinGW `-include`, MSVC `/FI`: CMakeLists.txt) and
 * CUDA files (nvcc's `--pre-include`), never into the shim's own files: darknet's sources stay unmodified, yet
 * their calls of
 *
 *   exit()                                  -> a longjmp back to the guarded shim call (pdn_guard.c)
 *   error(), file_error(), x*alloc_location() (darknet's own, utils.c) -> the same, with darknet's message
 *   fread()                                 -> counted, so a truncated weights file is caught
 *   srand()                                 -> frozen while a seeded network is parsed
 *   malloc/calloc/realloc/free/fopen/fclose -> recorded while a load may still fail, freed if it does
 *   fopen(), fopen_s() (Windows)            -> a UTF-8 path opened as UTF-16 (_wfopen), not in the ANSI code page
 *   printf/fprintf/puts/fwrite/perror/...   -> captured per thread while a load runs
 *   train_network*()                        -> a stop request saves weights after the iteration (pdn_train_hooks.c)
 *
 * land in pdn_hook_* functions.  One implementation of each, on every platform; on a thread with no guard, tracker
 * or capture active they do exactly what the original does, so darknet's own executable and libdarknet (the
 * reference builds, made from the same objects) behave as darknet's.
 *
 * The macros are function-like: only calls are renamed, never struct members or parameters of the same name
 * (blas.c's `float *error`).  A darknet function is not renamed in the file that defines it (CMakeLists.txt sets
 * PDN_HOOKS_DEFINES_UTILS for utils.c, PDN_HOOKS_DEFINES_TRAIN for network.c): its calls from inside that file
 * stay darknet's, as they did under the link-time --wrap this replaces.  darknet's own header declarations of
 * those functions become declarations of the hooks, with darknet's exact types.
 *
 * In nvcc's .cu files (__CUDACC__) malloc, calloc, realloc, free, printf and vprintf keep their names: CUDA declares
 * malloc, free and printf for device code too, where a host hook cannot be called, and the allocator is hooked all
 * or not at all (a block recorded by one hook and freed past the other would be freed twice after a failed load).
 * Their exit/error/file_error/x*alloc/fread/srand/fopen/fclose and stderr writers are hooked as in C files.
 */
#ifndef PDN_HOOKS_H
#define PDN_HOOKS_H

/* The system headers first, so that their declarations (and glibc's or MinGW's inline definitions) never meet
 * the macros below; their include guards keep the file's own later #includes from reading them again.  Files
 * that `#define _GNU_SOURCE` before their includes get it from CMakeLists.txt instead, as this runs first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__CUDACC__)
#include <cuda_runtime.h>   /* CUDA's own declarations (host and device) of these functions, before any macro */
#endif

#if defined(_MSC_VER)
#define PDN_HOOK_NORETURN __declspec(noreturn)
#else
#define PDN_HOOK_NORETURN __attribute__((noreturn))
#endif

#ifdef __cplusplus
extern "C" {
#endif
PDN_HOOK_NORETURN void pdn_hook_exit(int status);
size_t pdn_hook_fread(void *ptr, size_t size, size_t n, FILE *stream);
void pdn_hook_srand(unsigned int seed);

void *pdn_hook_malloc(size_t size);
void *pdn_hook_calloc(size_t nmemb, size_t size);
void *pdn_hook_realloc(void *ptr, size_t size);
void pdn_hook_free(void *ptr);
FILE *pdn_hook_fopen(const char *path, const char *mode);
int pdn_hook_fclose(FILE *stream);
#if defined(_WIN32)
int pdn_hook_fopen_s(FILE **stream, const char *path, const char *mode);   /* stb_image's, under MSVC */
#endif

int pdn_hook_printf(const char *fmt, ...);
int pdn_hook_fprintf(FILE *stream, const char *fmt, ...);
int pdn_hook_vprintf(const char *fmt, va_list args);
int pdn_hook_vfprintf(FILE *stream, const char *fmt, va_list args);
int pdn_hook_puts(const char *s);
int pdn_hook_putchar(int c);
int pdn_hook_fputc(int c, FILE *stream);
int pdn_hook_fputs(const char *s, FILE *stream);
size_t pdn_hook_fwrite(const void *ptr, size_t size, size_t n, FILE *stream);
void pdn_hook_perror(const char *s);

/* darknet's (utils.h declares them with these types) */
void pdn_hook_error(const char *msg, const char *filename, const char *funcname, int line);
void pdn_hook_file_error(const char *s);
void *pdn_hook_xmalloc_location(size_t size, const char *filename, const char *funcname, int line);
void *pdn_hook_xcalloc_location(size_t nmemb, size_t size, const char *filename, const char *funcname, int line);
void *pdn_hook_xrealloc_location(void *ptr, size_t size, const char *filename, const char *funcname, int line);
#ifdef __cplusplus
}
#endif

#ifndef PDN_HOOKS_NO_MACROS   /* pdn_guard.c and pdn_train_hooks.c, which define the hooks, take the declarations */
/* glibc, MinGW and MSVC may define some of these as macros of their own (putc, putchar, fortify's printf) */
#undef exit
#undef fread
#undef srand
#undef fopen
#undef fclose
#undef fprintf
#undef vfprintf
#undef puts
#undef putchar
#undef putc
#undef fputc
#undef fputs
#undef fwrite
#undef perror

/* variadic: darknet passes its location as one macro, error(msg, DARKNET_LOC), expanded only after a call's
 * arguments are counted */
#define exit(...) pdn_hook_exit(__VA_ARGS__)
#define fread(...) pdn_hook_fread(__VA_ARGS__)
#define srand(...) pdn_hook_srand(__VA_ARGS__)
#define fopen(...) pdn_hook_fopen(__VA_ARGS__)
#define fclose(...) pdn_hook_fclose(__VA_ARGS__)
#if defined(_WIN32)
#undef fopen_s
#define fopen_s(...) pdn_hook_fopen_s(__VA_ARGS__)
#endif
#define fprintf(...) pdn_hook_fprintf(__VA_ARGS__)
#define vfprintf(...) pdn_hook_vfprintf(__VA_ARGS__)
#define puts(...) pdn_hook_puts(__VA_ARGS__)
#define putchar(...) pdn_hook_putchar(__VA_ARGS__)
#define putc(...) pdn_hook_fputc(__VA_ARGS__)
#define fputc(...) pdn_hook_fputc(__VA_ARGS__)
#define fputs(...) pdn_hook_fputs(__VA_ARGS__)
#define fwrite(...) pdn_hook_fwrite(__VA_ARGS__)
#define perror(...) pdn_hook_perror(__VA_ARGS__)

#if !defined(__CUDACC__)   /* see the top of this file */
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef printf
#undef vprintf
#define malloc(...) pdn_hook_malloc(__VA_ARGS__)
#define calloc(...) pdn_hook_calloc(__VA_ARGS__)
#define realloc(...) pdn_hook_realloc(__VA_ARGS__)
#define free(...) pdn_hook_free(__VA_ARGS__)
#define printf(...) pdn_hook_printf(__VA_ARGS__)
#define vprintf(...) pdn_hook_vprintf(__VA_ARGS__)
#endif

#ifndef PDN_HOOKS_DEFINES_UTILS
#define error(...) pdn_hook_error(__VA_ARGS__)
#define file_error(...) pdn_hook_file_error(__VA_ARGS__)
#define xmalloc_location(...) pdn_hook_xmalloc_location(__VA_ARGS__)
#define xcalloc_location(...) pdn_hook_xcalloc_location(__VA_ARGS__)
#define xrealloc_location(...) pdn_hook_xrealloc_location(__VA_ARGS__)
#endif

/* The training loop's per-iteration calls (defined in network.c and, for several GPUs, network_kernels.cu, where
 * CMakeLists.txt sets PDN_HOOKS_DEFINES_TRAIN too).
 * Their hooks take darknet's network and data types, unknown here: darknet's network.h declares them. */
#ifndef PDN_HOOKS_DEFINES_TRAIN
#define train_network(...) pdn_hook_train_network(__VA_ARGS__)
#define train_network_waitkey(...) pdn_hook_train_network_waitkey(__VA_ARGS__)
#define train_networks(...) pdn_hook_train_networks(__VA_ARGS__)
#endif

#endif   /* PDN_HOOKS_NO_MACROS */

#endif
