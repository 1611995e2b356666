/*
 * The flat API of libpydarknet (declared in pdn_api.h): open a network, detect on batches of BGR frames, report
 * what the library was built with.  Every call into darknet that can end in darknet's exit() runs under a guard
 * (pdn_guard.c) and comes back as an error code instead.
 */
#include "pdn_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "pdn_backend.h"
#include "pdn_build_config.h"
#include "pdn_postprocess.h"
#include "pdn_preprocess.h"
#ifdef GPU
#include "activations.h"
#include "blas.h"
#include "dark_cuda.h"
#include "pdn_preprocess_gpu.h"
#endif

#if defined(_WIN32)
#include <windows.h>
static SRWLOCK load_lock = SRWLOCK_INIT;
static void lock_loads(void) { AcquireSRWLockExclusive(&load_lock); }
static void unlock_loads(void) { ReleaseSRWLockExclusive(&load_lock); }
#define pdn_stat pdn_stat_utf8   /* _stat64 of a UTF-8 path (pdn_guard.c) */
typedef struct _stat64 pdn_stat_t;
#else
#include <pthread.h>
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock_loads(void) { pthread_mutex_lock(&load_lock); }
static void unlock_loads(void) { pthread_mutex_unlock(&load_lock); }
#define pdn_stat stat
typedef struct stat pdn_stat_t;
#endif

struct pdn_detector {
    network *net;
    int verbose;
    int gpu;                  /* -1: CPU */
    int letter_box;           /* [net] letter_box=1 in the cfg */
    float *input;             /* batch x c x h x w floats: pinned host memory on the GPU path */
    int owns_input;
    int64_t weights_bytes;
    pdn_postprocessor post;
    double last_ms[3];        /* preprocess, forward, postprocess */
#ifdef GPU
    pdn_gpu_stage *stage;     /* GPU detectors prepare their input on the GPU (NULL: on the CPU) */
#else
    void *stage;              /* always NULL */
#endif
};

/* ------------------------------------------------------------------------------------------------------------ */
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

PDN_EXPORT int pdn_abi_version(void) { return PDN_ABI_VERSION; }

#ifdef GPU
#define PDN_HAS_CUDA 1
#else
#define PDN_HAS_CUDA 0
#endif
#ifdef CUDNN
#define PDN_HAS_CUDNN 1
#else
#define PDN_HAS_CUDNN 0
#endif
#ifdef CUDNN_HALF
#define PDN_HAS_HALF 1
#else
#define PDN_HAS_HALF 0
#endif

PDN_EXPORT const char *pdn_build_info(void)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"abi_version\": %d, \"cuda\": %s, \"cuda_version\": \"%s\", \"cudnn\": %s, \"cudnn_version\": \"%s\", "
             "\"cudnn_half\": %s, \"cuda_architectures\": \"%s\", \"openmp\": %s, \"avx2\": %s, "
             "\"exit_guard\": %s, \"darknet_commit\": \"%s\", \"compiler\": \"%s\", \"build_type\": \"%s\", "
             "\"requested\": {\"cuda\": \"%s\", \"cudnn\": \"%s\", \"cudnn_half\": \"%s\"}, \"notes\": \"%s\"}",
             PDN_ABI_VERSION, PDN_HAS_CUDA ? "true" : "false", PDN_BUILD_CUDA_VERSION,
             PDN_HAS_CUDNN ? "true" : "false", PDN_BUILD_CUDNN_VERSION, PDN_HAS_HALF ? "true" : "false",
             PDN_BUILD_CUDA_ARCHS, strcmp(PDN_BUILD_OPENMP, "TRUE") == 0 || strcmp(PDN_BUILD_OPENMP, "ON") == 0 ||
                 strcmp(PDN_BUILD_OPENMP, "1") == 0 ? "true" : "false",
             strcmp(PDN_BUILD_AVX2, "ON") == 0 || strcmp(PDN_BUILD_AVX2, "TRUE") == 0 ? "true" : "false",
             pdn_exit_guard_available() ? "true" : "false", PDN_BUILD_DARKNET_COMMIT, PDN_BUILD_COMPILER,
             PDN_BUILD_TYPE, PDN_BUILD_REQUESTED_CUDA, PDN_BUILD_REQUESTED_CUDNN, PDN_BUILD_REQUESTED_HALF,
             PDN_BUILD_NOTES);
    return json;
}

PDN_EXPORT int pdn_cuda_device_count(void)
{
#ifdef GPU
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();   /* no driver or no device: not an error worth keeping */
        return 0;
    }
    return count;
#else
    return -1;
#endif
}

PDN_EXPORT int pdn_cuda_device_info(int device, char *name, int name_size, int *major, int *minor,
                                    uint64_t *total_memory, uint64_t *free_memory)
{
#ifdef GPU
    struct cudaDeviceProp prop;
    size_t free_b = 0, total_b = 0;
    int previous = 0;
    pdn_clear_error();
    if (!name || name_size < 1) {
        pdn_set_error(PDN_ERR_INPUT, "pdn_cuda_device_info: a name buffer is required");
        return -1;
    }
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        pdn_set_error(PDN_ERR_CUDA, "CUDA device %d: %s", device, cudaGetErrorString(cudaGetLastError()));
        return -1;
    }
    snprintf(name, (size_t)name_size, "%s", prop.name);
    *major = prop.major;
    *minor = prop.minor;
    cudaGetDevice(&previous);
    if (cudaSetDevice(device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        *total_memory = total_b;
        *free_memory = free_b;
    } else {
        cudaGetLastError();
        *total_memory = prop.totalGlobalMem;
        *free_memory = 0;
    }
    cudaSetDevice(previous);
    return 0;
#else
    pdn_set_error(PDN_ERR_CUDA, "this pydarknet was built without CUDA");
    return -1;
#endif
}

/* ------------------------------------------------------------------------------------------------------------ */
static void free_detector(pdn_detector *d)
{
    if (!d) return;
#ifdef GPU
    pdn_gpu_stage_free(d->stage);
#endif
    pdn_post_free(&d->post);
    if (d->owns_input) free(d->input);
    if (d->net) {
        free_network_ptr(d->net);   /* frees what the struct points to, not the struct */
        free(d->net);
    }
    free(d);
}

/* The weights file must hold exactly what the cfg's layers read: no less (truncated download), no more (weights of
 * another network).  darknet itself reads what it can and carries on. */
static int check_weights_size(const char *path, const pdn_guard *g, int64_t *size_out)
{
    pdn_stat_t st;
    if (pdn_stat(path, &st) != 0) {
        pdn_set_error(PDN_ERR_WEIGHTS, "cannot stat weights file %s", path);
        return -1;
    }
    *size_out = (int64_t)st.st_size;
    /* the bytes load_weights() asked for and got were counted by the fread hook (pdn_guard.c) */
    if (g->fread_got < g->fread_requested) {
        pdn_set_error(PDN_ERR_WEIGHTS,
                      "weights file %s is truncated: it ends after %lld bytes, before the cfg's layers were all "
                      "loaded (an interrupted download, or weights of a smaller network)",
                      path, (long long)st.st_size);
        return -1;
    }
    if ((uint64_t)st.st_size > g->fread_got) {
        pdn_set_error(PDN_ERR_WEIGHTS,
                      "weights file %s does not match the cfg: the cfg reads %llu bytes, the file has %lld "
                      "(%lld bytes more). Were these weights trained with another cfg or number of classes?",
                      path, (unsigned long long)g->fread_got, (long long)st.st_size,
                      (long long)((uint64_t)st.st_size - g->fread_got));
        return -1;
    }
    return 0;
}

/* The most floats any one layer of the network holds per image (its input or output).  darknet sizes its
 * buffers as int (batch * outputs): past INT_MAX the size wraps around and darknet writes beyond what it got. */
static int64_t largest_layer_floats(const network *net)
{
    int64_t largest = net->inputs;
    int i;
    for (i = 0; i < net->n; ++i) {
        const layer *l = &net->layers[i];
        if (l->outputs > largest) largest = l->outputs;
        if (l->inputs > largest) largest = l->inputs;
    }
    return largest;
}

/* The arguments pdn_detector_open() refuses before it touches darknet. */
static int check_open_arguments(const char *cfg_path, const char *weights_path, int batch, int gpu)
{
    if (!cfg_path || !weights_path || batch < 1) {
        pdn_set_error(PDN_ERR_INPUT, "pdn_detector_open: cfg and weights paths and a batch >= 1 are required");
        return -1;
    }
#ifndef GPU
    if (gpu >= 0) {
        pdn_set_error(PDN_ERR_CUDA, "GPU %d was requested, but this pydarknet was built without CUDA (%s)", gpu,
                      PDN_BUILD_NOTES);
        return -1;
    }
#else
    (void)gpu;
#endif
    return 0;
}

/* The most floats any layer holds per image, measured on the network parsed at batch 1 as for the CPU (no cuDNN
 * set-up), before darknet is asked for batch N.  Runs under parse_and_load()'s lock and guard: if darknet gives up
 * here, it longjmps there. */
static int64_t floats_per_image(const char *cfg_path, int gpu)
{
    network probe;
    int64_t per_image;
#ifdef GPU
    if (gpu >= 0) cuda_set_device(gpu);   /* a CUDA build's parser still makes some GPU buffers: on our device */
    gpu_index = -1;
#else
    (void)gpu;
#endif
    probe = parse_network_cfg_custom((char *)cfg_path, 1, 1);
    per_image = largest_layer_floats(&probe);
    free_network(probe);
    return per_image;
}

/* Parse the cfg at `batch` and load the weights into d->net.  darknet's parser works through globals (gpu_index),
 * so one load runs at a time (the load lock); it answers bad input with exit(), which the guard `g` turns into a
 * return here, with what darknet had allocated freed (the tracker) and its last output in the message.  `g` stays
 * the caller's: it counted the weights bytes read (check_weights_size).  Returns 0, or -1 with the error set and
 * nothing of the network left (the caller frees only d). */
static int parse_and_load(pdn_detector *d, const char *cfg_path, const char *weights_path, int batch, pdn_guard *g)
{
    pdn_tracker tracker;
    pdn_capture capture;
    char tail[1536];
    const int quiet = !d->verbose;

    lock_loads();
    if (quiet) pdn_capture_begin(&capture);
    pdn_track_begin(&tracker);
    pdn_guard_enter(g, PDN_ERR_CONFIG);
    if (setjmp(g->env)) {
        /* darknet gave up somewhere below: free what it had built so far (it has no owner now) */
        pdn_track_end(&tracker, 1);
        if (quiet) pdn_capture_end(&capture, tail, sizeof tail);
        else tail[0] = '\0';
        unlock_loads();
        pdn_set_error(g->failed_kind, "%s%s%s", g->message, tail[0] ? "\n--- darknet's output ---\n" : "", tail);
        return -1;
    }
    if (batch > 1) {
        /* darknet sizes its buffers as int batch * outputs: past INT_MAX they wrap around and it writes beyond */
        const int64_t per_image = floats_per_image(cfg_path, d->gpu);
        if (per_image * batch > INT_MAX) {
            pdn_guard_leave(g);
            pdn_track_end(&tracker, 1);
            if (quiet) pdn_capture_end(&capture, NULL, 0);
            unlock_loads();
            pdn_set_error(PDN_ERR_INPUT, "%s: batch %d is too large for this network: a layer of %lld values per "
                          "image needs batch <= %lld (darknet counts buffer sizes in 32-bit ints)", cfg_path, batch,
                          (long long)per_image, (long long)(INT_MAX / per_image));
            return -1;
        }
    }
#ifdef GPU
    gpu_index = d->gpu;
    if (d->gpu >= 0) cuda_set_device(d->gpu);
#endif
    /* darknet announces the CPU features it found ("Used AVX", "Used FMA & AVX2") the first time a kernel asks,
     * once per process.  Asked here, the announcement lands in this load's capture; left to the forward pass,
     * it comes from whichever OpenMP worker runs a kernel first, a thread that captures nothing. */
    init_cpu();
    d->net = (network *)xcalloc(1, sizeof(network));
    *d->net = parse_network_cfg_custom((char *)cfg_path, batch, 1);
    g->kind = PDN_ERR_WEIGHTS;
    g->count_fread = 1;
    load_weights(d->net, (char *)weights_path);
    g->count_fread = 0;
    g->kind = PDN_ERR_INTERNAL;
    fuse_conv_batchnorm(*d->net);
    calculate_binary_weights(*d->net);
    pdn_guard_leave(g);
    pdn_track_end(&tracker, 0);   /* the network owns what was allocated */
    if (quiet) pdn_capture_end(&capture, NULL, 0);
    unlock_loads();
    return 0;
}

/* Decoding and NMS for the network's detection layers ([yolo], [Gaussian_yolo], [region]), and the combinations
 * this build cannot detect with. */
static int init_postprocessing(pdn_detector *d, const char *cfg_path)
{
    const int rc = pdn_post_init(&d->post, d->net);
    if (rc == -1) {
        pdn_set_error(PDN_ERR_CONFIG, "%s: the detection layers disagree on the number of classes", cfg_path);
        return -1;
    }
    if (rc == -2) {
        pdn_set_error(PDN_ERR_CONFIG, "%s has no detection layer ([yolo], [Gaussian_yolo] or [region])", cfg_path);
        return -1;
    }
    if (rc == -3) {
        pdn_set_error(PDN_ERR_MEMORY, "out of memory allocating detection buffers");
        return -1;
    }
#ifdef GPU
    if (d->gpu < 0 && d->post.yolo_layers != d->post.detection_layers) {
        /* their CPU forward skips its activations in CUDA builds (#ifndef GPU); we only redo [yolo]'s */
        pdn_set_error(PDN_ERR_CONFIG, "%s: [Gaussian_yolo] and [region] networks run on the CPU only in CPU builds of "
                      "pydarknet; use a GPU (device=0)", cfg_path);
        return -1;
    }
#endif
    if (d->post.yolo_layers != d->post.detection_layers && d->net->batch > 1) {
        pdn_set_error(PDN_ERR_CONFIG,
                      "%s: networks with [Gaussian_yolo] or [region] layers can only detect with batch_size=1",
                      cfg_path);
        return -1;
    }
    return 0;
}

#ifdef GPU
/* A GPU detector's input: darknet's pinned host buffer, and staging buffers so that the frames are resized on the
 * GPU (PYDARKNET_GPU_PREPROCESS=0: on the CPU instead, into the pinned buffer). */
static int setup_gpu_input(pdn_detector *d)
{
    const char *cpu_prep = getenv("PYDARKNET_GPU_PREPROCESS");
    d->input = d->net->input_pinned_cpu;
    d->owns_input = 0;
    if (!(cpu_prep && strcmp(cpu_prep, "0") == 0)) {
        d->stage = pdn_gpu_stage_create();
        if (!d->stage) {
            pdn_set_error(PDN_ERR_CUDA, "cannot allocate GPU staging buffers for the input frames");
            return -1;
        }
    }
    return 0;
}

/* A CPU detector in a CUDA build: darknet's parser allocates some CPU buffers only in CPU builds (#ifndef GPU), so
 * a network parsed for the CPU here lacks them and its CPU forward pass would write through NULL.  Add them. */
static int add_cpu_buffers_of_cpu_builds(pdn_detector *d)
{
    size_t workspace = 0;
    int i;
    if (d->net->workspace) return 0;
    /* the workspace the convolutions share: as large as the largest layer asks for */
    for (i = 0; i < d->net->n; ++i)
        if (d->net->layers[i].workspace_size > workspace) workspace = d->net->layers[i].workspace_size;
    d->net->workspace = (float *)calloc(1, workspace ? workspace : 1);
    if (!d->net->workspace) {
        pdn_set_error(PDN_ERR_MEMORY, "out of memory allocating the CPU workspace");
        return -1;
    }
    /* the buffer where mish/swish keep their inputs (convolutional_layer.c, shortcut_layer.c), which their CPU
     * forward writes; free_layer() frees it */
    for (i = 0; i < d->net->n; ++i) {
        layer *l = &d->net->layers[i];
        if ((l->type == CONVOLUTIONAL || l->type == SHORTCUT) && !l->activation_input &&
            (l->activation == SWISH || l->activation == MISH || l->activation == HARD_MISH)) {
            l->activation_input = (float *)calloc((size_t)l->batch * l->outputs, sizeof(float));
            if (!l->activation_input) {
                pdn_set_error(PDN_ERR_MEMORY, "out of memory allocating activation buffers");
                return -1;
            }
        }
    }
    return 0;
}
#endif

/* The network input, batch x c x h x w floats, where darknet gave none (CPU detectors): pdn_detect resizes the
 * frames into it. */
static int allocate_input(pdn_detector *d)
{
    size_t n;
    if (d->input) return 0;
    n = (size_t)d->net->batch * d->net->w * d->net->h * d->net->c;
    d->input = (float *)calloc(n, sizeof(float));
    d->owns_input = 1;
    if (!d->input) {
        pdn_set_error(PDN_ERR_MEMORY, "out of memory allocating the input buffer");
        return -1;
    }
    return 0;
}

PDN_EXPORT pdn_detector *pdn_detector_open(const char *cfg_path, const char *weights_path, int batch, int gpu,
                                           int verbose)
{
    pdn_guard g;
    pdn_detector *d;

    pdn_clear_error();
    if (check_open_arguments(cfg_path, weights_path, batch, gpu)) return NULL;
    d = (pdn_detector *)calloc(1, sizeof *d);
    if (!d) {
        pdn_set_error(PDN_ERR_MEMORY, "out of memory");
        return NULL;
    }
    d->gpu = gpu < 0 ? -1 : gpu;
    d->verbose = verbose;
    if (parse_and_load(d, cfg_path, weights_path, batch, &g)) {
        free(d);   /* the network, if any, was freed with what darknet allocated */
        return NULL;
    }
    if (check_weights_size(weights_path, &g, &d->weights_bytes)) goto fail;
    if (init_postprocessing(d, cfg_path)) goto fail;
    d->letter_box = d->net->letter_box;
#ifdef GPU
    if (d->gpu >= 0 ? setup_gpu_input(d) : add_cpu_buffers_of_cpu_builds(d)) goto fail;
#endif
    if (allocate_input(d)) goto fail;
    return d;

fail:
    pdn_detector_close(d);   /* under the load lock, with gpu_index set as free_network() needs */
    return NULL;
}

PDN_EXPORT void pdn_detector_close(pdn_detector *detector)
{
    if (!detector) return;
    lock_loads();
#ifdef GPU
    gpu_index = detector->gpu;   /* free_network() frees the workspace by the global gpu_index */
    if (detector->gpu >= 0) cuda_set_device(detector->gpu);
#endif
    free_detector(detector);
    unlock_loads();
}

PDN_EXPORT int pdn_detector_info(const pdn_detector *d, pdn_network_info *info)
{
    const network *net;
    if (!d || !info) return -1;
    net = d->net;
    memset(info, 0, sizeof *info);
    info->width = net->w;
    info->height = net->h;
    info->channels = net->c;
    info->batch = net->batch;
    info->classes = d->post.classes;
    info->gpu = d->gpu;
    info->detection_layers = d->post.detection_layers;
    info->nms_kind = d->post.nms_kind;
    info->beta_nms = d->post.beta_nms;
    info->layers = net->n;
    info->letter_box = d->letter_box;
    info->weights_bytes = d->weights_bytes;
    info->seen = net->seen ? *net->seen : 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
static int check_images(const pdn_detector *d, int n, const uint8_t **images, const int *heights,
                        const int *widths, const int64_t *strides)
{
    int i;
    if (!d) {
        pdn_set_error(PDN_ERR_INPUT, "the detector is closed");
        return -1;
    }
    if (n < 1 || n > d->net->batch) {
        pdn_set_error(PDN_ERR_INPUT, "%d images given; this network takes 1 to %d at a time", n, d->net->batch);
        return -1;
    }
    if (d->net->c != 3) {
        pdn_set_error(PDN_ERR_INPUT, "the network takes %d channels; only 3-channel (BGR) networks are supported",
                      d->net->c);
        return -1;
    }
    for (i = 0; i < n; ++i) {
        if (!images[i] || heights[i] < 1 || widths[i] < 1 || strides[i] < 3 * (int64_t)widths[i]) {
            pdn_set_error(PDN_ERR_INPUT, "image %d: empty or inconsistent (%d x %d, row stride %lld)", i,
                          widths[i], heights[i], (long long)strides[i]);
            return -1;
        }
    }
    return 0;
}

/* Resize (or letterbox) the frames into the network input: into `cpu_out` on the host, or, for a GPU detector
 * given cpu_out == NULL, uploaded as uint8 and resized on the GPU straight into the network's input buffer on
 * darknet's stream (a third of the bytes over PCIe, no CPU time). */
static int prepare(pdn_detector *d, int n, const uint8_t **images, const int *heights, const int *widths,
                   const int64_t *strides, int letterbox, float *cpu_out)
{
    pdn_image_view *v = (pdn_image_view *)malloc(sizeof(pdn_image_view) * (size_t)n);
    int i, rc;
    if (!v) {
        pdn_set_error(PDN_ERR_MEMORY, "out of memory while preparing images");
        return -1;
    }
    for (i = 0; i < n; ++i) {
        v[i].pixels = images[i];
        v[i].width = widths[i];
        v[i].height = heights[i];
        v[i].row_stride = strides[i];
    }
#ifdef GPU
    if (!cpu_out) {
        const char *cuda_error = NULL;
        if (cuda_get_device() != d->gpu) cudaSetDevice(d->gpu);
        rc = pdn_gpu_prepare_batch(d->stage, v, n, d->net->w, d->net->h, letterbox, d->net->input_state_gpu,
                                   get_cuda_stream(), &cuda_error);
        free(v);
        if (rc) pdn_set_error(PDN_ERR_CUDA, "preparing the frames on the GPU failed: %s", cuda_error);
        return rc;
    }
#endif
    rc = pdn_prepare_batch(v, n, d->net->w, d->net->h, letterbox, cpu_out);
    free(v);
    if (rc) pdn_set_error(PDN_ERR_MEMORY, "out of memory while preparing images");
    return rc;
}

#ifdef GPU
/* darknet's forward_yolo_layer() applies the [yolo] output activations only in CPU builds (#ifndef GPU): in a CUDA
 * build forward_yolo_layer_gpu() does it, so a network run on the CPU would come back raw.  Apply them here exactly
 * as the CPU build's forward_yolo_layer() does. */
void pdn_activate_yolo_layer_on_cpu(const layer *l)
{
    const int plane = l->w * l->h;
    int b, n;
    for (b = 0; b < l->batch; ++b) {
        for (n = 0; n < l->n; ++n) {
            /* yolo_layer.c's entry_index(l, b, n*w*h, entry) */
            float *box = l->output + (size_t)b * l->outputs + (size_t)n * plane * (4 + l->classes + 1);
            if (!l->new_coords) {
                activate_array(box, 2 * plane, LOGISTIC);
                activate_array(box + 4 * plane, (1 + l->classes) * plane, LOGISTIC);
            }
            scal_add_cpu(2 * plane, l->scale_x_y, -0.5f * (l->scale_x_y - 1), box, 1);
        }
    }
}

static void activate_yolo_outputs_on_cpu(network *net)
{
    int i;
    for (i = 0; i < net->n; ++i)
        if (net->layers[i].type == YOLO) pdn_activate_yolo_layer_on_cpu(&net->layers[i]);
}
#endif

/* One forward pass over the prepared input: darknet's network_predict without its global-state detours (it
 * consults the global gpu_index, which another detector on another device may have changed). */
static int forward(pdn_detector *d, int input_on_device)
{
    pdn_guard g;
    network_state state;
    pdn_guard_enter(&g, PDN_ERR_INTERNAL);
    if (setjmp(g.env)) {
        pdn_set_error(g.failed_kind, "%s", g.message);
        return -1;
    }
    memset(&state, 0, sizeof state);
    state.net = *d->net;
    state.index = 0;
    state.train = 0;
#ifdef GPU
    if (d->gpu >= 0) {
        const size_t size = (size_t)get_network_input_size(*d->net) * d->net->batch;
        if (cuda_get_device() != d->gpu) cuda_set_device(d->gpu);
        state.input = d->net->input_state_gpu;
        if (!input_on_device) cuda_push_array(state.input, d->input, size);
        forward_network_gpu(*d->net, state);
        CHECK_CUDA(cudaStreamSynchronize(get_cuda_stream()));
        reset_wait_stream_events();
        pdn_guard_leave(&g);
        return 0;
    }
#endif
    state.input = d->input;
    forward_network(*d->net, state);
#ifdef GPU
    activate_yolo_outputs_on_cpu(d->net);
#endif
    pdn_guard_leave(&g);
    return 0;
}

PDN_EXPORT int pdn_detect(pdn_detector *d, int n, const uint8_t **images, const int *heights, const int *widths,
                          const int64_t *strides, float thresh, float nms_thresh, int letterbox)
{
    double t0, t1, t2;
    int i;
    pdn_clear_error();
    if (check_images(d, n, images, heights, widths, strides)) return -1;
    if (!(thresh >= 0 && thresh < 1) || !(nms_thresh >= 0 && nms_thresh <= 1)) {
        pdn_set_error(PDN_ERR_INPUT, "thresholds out of range: thresh %g must be in [0, 1), nms %g in [0, 1]",
                      thresh, nms_thresh);
        return -1;
    }
    if (letterbox < 0) letterbox = d->letter_box;
    t0 = pdn_now_ms();
    if (prepare(d, n, images, heights, widths, strides, letterbox, d->stage ? NULL : d->input)) return -1;
    t1 = pdn_now_ms();
    if (forward(d, d->stage != NULL)) return -1;
    t2 = pdn_now_ms();
    d->post.res_count = 0;
    for (i = 0; i < n; ++i) {
        if (pdn_post_image(&d->post, d->net, i, i, widths[i], heights[i], thresh, nms_thresh, letterbox) < 0) {
            pdn_set_error(PDN_ERR_MEMORY, "out of memory while collecting detections");
            return -1;
        }
    }
    d->last_ms[0] = t1 - t0;
    d->last_ms[1] = t2 - t1;
    d->last_ms[2] = pdn_now_ms() - t2;
    return d->post.res_count;
}

/* For pdn_backend.c: detection from another engine's forward pass fills and reads these. */
int pdn_detector_get_parts(pdn_detector *d, pdn_detector_parts *parts)
{
    if (!d) return -1;
    parts->net = d->net;
    parts->post = &d->post;
    parts->last_ms = d->last_ms;
    parts->letter_box = d->letter_box;
    return 0;
}

PDN_EXPORT int pdn_detector_results(const pdn_detector *d, int32_t *image_index, int32_t *class_id,
                                    float *confidence, float *xyxy, int capacity)
{
    int n;
    if (!d || capacity < 0) return -1;
    n = d->post.res_count < capacity ? d->post.res_count : capacity;
    memcpy(image_index, d->post.res_image, sizeof(int32_t) * (size_t)n);
    memcpy(class_id, d->post.res_class, sizeof(int32_t) * (size_t)n);
    memcpy(confidence, d->post.res_conf, sizeof(float) * (size_t)n);
    memcpy(xyxy, d->post.res_xyxy, 4 * sizeof(float) * (size_t)n);
    return n;
}

PDN_EXPORT int pdn_detector_timings(const pdn_detector *d, double *preprocess_ms, double *forward_ms,
                                    double *postprocess_ms)
{
    if (!d) return -1;
    *preprocess_ms = d->last_ms[0];
    *forward_ms = d->last_ms[1];
    *postprocess_ms = d->last_ms[2];
    return 0;
}

PDN_EXPORT int pdn_detector_set_clip(pdn_detector *d, int clip)
{
    if (!d) return -1;
    d->post.unclipped = !clip;
    return 0;
}

PDN_EXPORT int pdn_preprocess(pdn_detector *d, int n, const uint8_t **images, const int *heights,
                              const int *widths, const int64_t *strides, int letterbox, float *out)
{
    pdn_clear_error();
    if (check_images(d, n, images, heights, widths, strides)) return -1;
    if (letterbox < 0) letterbox = d->letter_box;
    return prepare(d, n, images, heights, widths, strides, letterbox, out);
}

/* darknet's own network_predict_ptr() on an input prepared by the caller: the ceiling the benchmarks compare
 * pdn_detect against. */
PDN_EXPORT int pdn_forward_only(pdn_detector *d, const float *input)
{
    pdn_guard g;
    pdn_clear_error();
    if (!d || !input) {
        pdn_set_error(PDN_ERR_INPUT, "pdn_forward_only: detector and input are required");
        return -1;
    }
    lock_loads();   /* network_predict_ptr() reads the global gpu_index: nobody may change it meanwhile */
    pdn_guard_enter(&g, PDN_ERR_INTERNAL);
    if (setjmp(g.env)) {
        unlock_loads();
        pdn_set_error(g.failed_kind, "%s", g.message);
        return -1;
    }
#ifdef GPU
    gpu_index = d->gpu;
#endif
    network_predict_ptr(d->net, (float *)input);
    pdn_guard_leave(&g);
    unlock_loads();
    return 0;
}

PDN_EXPORT int pdn_write_initial_weights(const char *cfg_path, const char *weights_path, unsigned int seed,
                                         int unit_variance)
{
    pdn_guard g;
    pdn_tracker tracker;
    pdn_capture capture;
    char tail[1536];
    network *volatile net = NULL;
    pdn_clear_error();
    if (!cfg_path || !weights_path) {
        pdn_set_error(PDN_ERR_INPUT, "pdn_write_initial_weights: cfg and weights paths are required");
        return -1;
    }
    lock_loads();
    pdn_capture_begin(&capture);
    pdn_track_begin(&tracker);
    pdn_guard_enter(&g, PDN_ERR_CONFIG);
    if (setjmp(g.env)) {
        pdn_track_end(&tracker, 1);
        pdn_freeze_srand(0);
        pdn_capture_end(&capture, tail, sizeof tail);
        unlock_loads();
        pdn_set_error(g.failed_kind, "%s%s%s", g.message, tail[0] ? "\n--- darknet's output ---\n" : "", tail);
        return -1;
    }
#ifdef GPU
    gpu_index = -1;   /* initialise on the host: no GPU needed to write a file */
#endif
    srand(seed);
    pdn_freeze_srand(1);   /* the whole network from this seed: darknet's [yolo] parser reseeds with time(0) */
    net = (network *)xcalloc(1, sizeof(network));
    *net = parse_network_cfg_custom((char *)cfg_path, 1, 1);
    pdn_freeze_srand(0);
    if (unit_variance) {
        /* darknet starts batch-norm rolling variances at 0, so an untrained network used for inference divides
         * by sqrt(1e-6) in every layer and saturates (or overflows in FP16); variance 1 keeps it in range */
        int i, j;
        for (i = 0; i < net->n; ++i) {
            layer *l = &net->layers[i];
            if (l->type == CONVOLUTIONAL && l->batch_normalize && l->rolling_variance)
                for (j = 0; j < l->n; ++j) l->rolling_variance[j] = 1;
        }
    }
    g.kind = PDN_ERR_FILE;
    save_weights(*net, (char *)weights_path);
    pdn_guard_leave(&g);
    pdn_track_end(&tracker, 0);
    pdn_capture_end(&capture, NULL, 0);
    free_network_ptr(net);
    free(net);
    unlock_loads();
    return 0;
}
