/*
 * darknet's gemm() through OpenBLAS's sgemm, found at run time.
 *
 * darknet's CPU layers (convolutional, connected, local, deconvolutional) multiply matrices with gemm() from
 * gemm.c: a plain AVX2 loop (gemm_nn_fast) that reaches a fraction of what an optimised sgemm does (docs/cpu.md).
 * libpydarknet is linked with `--wrap=gemm` (cmake/PydarknetBlas.cmake), so those calls, which all cross from
 * another file into gemm.c, land in __wrap_gemm below.  darknet's sources stay untouched, and darknet's own
 * executable and libdarknet (the reference builds) keep darknet's gemm.
 *
 * The BLAS is the scipy-openblas32 wheel's libscipy_openblas.so, opened on first use (no build-time dependency):
 *   $PYDARKNET_BLAS: a path to an OpenBLAS library, or "0"/"off"/"darknet" for darknet's own gemm;
 *   else ../../scipy_openblas32/lib/ relative to this library (both installed in the same site-packages);
 *   else where the build found the wheel (source checkouts), else the loader's search path.
 * Without one, darknet's gemm runs, and pdn_blas_info() says why.
 *
 * Threads: OpenBLAS's own thread pool and darknet's OpenMP pool busy-wait on the same cores between calls, which
 * on 2 cores made OpenBLAS-threaded gemm slower than darknet's (docs/cpu.md).  OpenBLAS is therefore set to one
 * thread, and each gemm is split over darknet's OpenMP threads (columns of C, or rows where C is narrow).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* dladdr */
#endif
#include "pdn_internal.h"
#include "pdn_blas_config.h"   /* generated: PDN_BLAS_NOTE, PDN_WITH_BLAS, PDN_BLAS_BUILD_PATH */

#ifndef PDN_BLAS_NOTE
#define PDN_BLAS_NOTE "darknet's own gemm"
#endif

#ifndef PDN_WITH_BLAS
PDN_EXPORT const char *pdn_blas_info(void) { return PDN_BLAS_NOTE; }
PDN_EXPORT double pdn_blas_selftest(int ta, int tb, int m, int n, int k, float beta) { return -1; }
#else
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef PDN_BLAS_BUILD_PATH
#define PDN_BLAS_BUILD_PATH ""
#endif

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef char *(*config_fn)(void);

void __real_gemm(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb,
                 float BETA, float *C, int ldc);

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static sgemm_fn blas_sgemm;
static char blas_info[1024];

static void *open_blas(const char *path)
{
    return path && path[0] ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
}

static void *symbol(void *handle, const char *name)
{
    char prefixed[64];
    void *f;
    snprintf(prefixed, sizeof prefixed, "scipy_%s", name);   /* the scipy-openblas wheels prefix their symbols */
    f = dlsym(handle, prefixed);
    return f ? f : dlsym(handle, name);
}

static void blas_init(void)
{
    const char *env = getenv("PYDARKNET_BLAS");
    const char *tried[4] = {NULL, NULL, NULL, NULL};
    char beside[4096] = "";
    void *handle = NULL;
    const char *path = NULL;
    int i;
    Dl_info self;

    if (env && (!strcmp(env, "0") || !strcasecmp(env, "off") || !strcasecmp(env, "darknet"))) {
        snprintf(blas_info, sizeof blas_info, "darknet's own gemm (PYDARKNET_BLAS=%s)", env);
        return;
    }
    if (env && env[0]) {
        tried[0] = env;
    } else {
        if (dladdr((void *)&blas_init, &self) && self.dli_fname) {
            const char *slash = strrchr(self.dli_fname, '/');
            if (slash)
                snprintf(beside, sizeof beside, "%.*s/../../scipy_openblas32/lib/libscipy_openblas.so",
                         (int)(slash - self.dli_fname), self.dli_fname);
        }
        tried[0] = beside;
        tried[1] = PDN_BLAS_BUILD_PATH;
        tried[2] = "libscipy_openblas.so";
    }
    for (i = 0; i < 4 && !handle; ++i) {
        handle = open_blas(tried[i]);
        if (handle) path = tried[i];
    }
    if (!handle) {
        snprintf(blas_info, sizeof blas_info,
                 "darknet's own gemm: no OpenBLAS found (%s; pip install scipy-openblas32 for a faster CPU forward "
                 "pass)", env && env[0] ? env : "scipy-openblas32 is not installed");
        return;
    }
    blas_sgemm = (sgemm_fn)symbol(handle, "cblas_sgemm");
    if (!blas_sgemm) {
        snprintf(blas_info, sizeof blas_info, "darknet's own gemm: %s has no cblas_sgemm", path);
        dlclose(handle);
        return;
    }
    {
        set_threads_fn set_threads = (set_threads_fn)symbol(handle, "openblas_set_num_threads");
        config_fn config = (config_fn)symbol(handle, "openblas_get_config");
        if (set_threads) set_threads(1);
        snprintf(blas_info, sizeof blas_info, "OpenBLAS sgemm (%s) from %s, single-threaded, split over OpenMP",
                 config ? config() : "unknown version", path);
    }
}

PDN_EXPORT const char *pdn_blas_info(void)
{
    pthread_once(&blas_once, blas_init);
    return blas_info;
}

void __wrap_gemm(int TA, int TB, int M, int N, int K, float ALPHA, float *A, int lda, float *B, int ldb,
                 float BETA, float *C, int ldc)
{
    const int ta = TA ? TRANS : NO_TRANS, tb = TB ? TRANS : NO_TRANS;
    pthread_once(&blas_once, blas_init);
    if (!blas_sgemm) {
        __real_gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc);
        return;
    }
#ifdef _OPENMP
    if ((double)M * N * K >= 262144.0 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
        const int split_columns = N >= M;
        #pragma omp parallel
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const int total = split_columns ? N : M;
            int chunk = (total + nt - 1) / nt;
            int start, count;
            chunk = (chunk + 15) & ~15;   /* whole 16-float vectors per thread */
            start = t * chunk;
            count = start >= total ? 0 : (start + chunk > total ? total - start : chunk);
            if (count > 0 && split_columns)        /* C[:, start:start+count] = A op(B)[:, start:...] */
                blas_sgemm(ROW_MAJOR, ta, tb, M, count, K, ALPHA, A, lda, TB ? B + (size_t)start * ldb : B + start,
                           ldb, BETA, C + start, ldc);
            else if (count > 0)                    /* C[start:start+count, :] = op(A)[start:..., :] op(B) */
                blas_sgemm(ROW_MAJOR, ta, tb, count, N, K, ALPHA, TA ? A + start : A + (size_t)start * lda, lda,
                           B, ldb, BETA, C + (size_t)start * ldc, ldc);
        }
        return;
    }
#endif
    blas_sgemm(ROW_MAJOR, ta, tb, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc);
}

/* For the tests: the largest |difference| between __wrap_gemm and darknet's gemm on one random problem (row-major,
 * tight leading dimensions), or -1 when darknet's gemm is what runs. */
PDN_EXPORT double pdn_blas_selftest(int ta, int tb, int m, int n, int k, float beta)
{
    const int lda = ta ? m : k, ldb = tb ? k : n;
    float *a = (float *)malloc(sizeof(float) * (size_t)m * k), *b = (float *)malloc(sizeof(float) * (size_t)k * n);
    float *c1 = (float *)malloc(sizeof(float) * (size_t)m * n), *c2 = (float *)malloc(sizeof(float) * (size_t)m * n);
    double worst = 0;
    size_t i;
    unsigned int seed = 12345;
    pthread_once(&blas_once, blas_init);
    if (!blas_sgemm || !a || !b || !c1 || !c2) {
        free(a), free(b), free(c1), free(c2);
        return -1;
    }
    for (i = 0; i < (size_t)m * k; ++i) a[i] = (float)(rand_r(&seed) % 2001 - 1000) / 1000.f;
    for (i = 0; i < (size_t)k * n; ++i) b[i] = (float)(rand_r(&seed) % 2001 - 1000) / 1000.f;
    for (i = 0; i < (size_t)m * n; ++i) c1[i] = c2[i] = (float)(rand_r(&seed) % 2001 - 1000) / 1000.f;
    __wrap_gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c1, n);
    __real_gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c2, n);
    for (i = 0; i < (size_t)m * n; ++i) {
        const double d = c1[i] > c2[i] ? c1[i] - c2[i] : c2[i] - c1[i];
        if (d > worst) worst = d;
    }
    free(a), free(b), free(c1), free(c2);
    return worst;
}
#endif /* PDN_WITH_BLAS */
