/*
 * Detection from another inference engine's forward pass (pydarknet/_opencv_backend.py: OpenCV DNN on the CPU).
 *
 * The other engine is fed pdn_preprocess()'s output and computes the inputs of the network's [yolo] layers; from
 * there on everything is darknet's and ours, exactly as in pdn_detect(): the values are written where darknet's
 * own forward pass would have left them (the output of the layer before each [yolo] layer), darknet's
 * forward_yolo_layer() activates them, and pdn_post_image() decodes (darknet's code) and applies our NMS.
 * Only networks whose detection layers are all [yolo] are accepted.
 *
 * Both calls here run on the calling thread alone.  The other engine keeps its own thread pool busy right before
 * and after them; waking OpenMP's workers for these small jobs (a resize, [yolo] activations, NMS: about a
 * millisecond in all) would leave them busy-waiting (libgomp spins for milliseconds) on the cores the engine
 * needs: measured on 2 cores, 2 OpenMP threads made the OpenCV forward pass 20-50% slower and these steps 25x
 * slower (docs/cpu.md).
 */
#include "pdn_backend.h"

#include <math.h>
#include <string.h>

#include "pdn_internal.h"
#include "yolo_layer.h"
#ifdef GPU
#include "activations.h"
#include "blas.h"
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static int serial_begin(void)
{
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    return threads;
#else
    return 1;
#endif
}

static void serial_end(int threads)
{
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
}

PDN_EXPORT int pdn_preprocess_serial(pdn_detector *d, int n, const uint8_t **images, const int *heights,
                                     const int *widths, const int64_t *strides, int letterbox, float *out)
{
    const int threads = serial_begin();
    const int rc = pdn_preprocess(d, n, images, heights, widths, strides, letterbox, out);
    serial_end(threads);
    return rc;
}

PDN_EXPORT int pdn_yolo_inputs(pdn_detector *d, int *layer_index, int *channels, int *heights, int *widths,
                               int capacity)
{
    pdn_detector_parts p;
    int i, count = 0;
    pdn_clear_error();
    if (pdn_detector_get_parts(d, &p)) {
        pdn_set_error(PDN_ERR_INPUT, "the detector is closed");
        return -1;
    }
    if (p.post->yolo_layers != p.post->detection_layers) {
        pdn_set_error(PDN_ERR_CONFIG, "only networks whose detection layers are all [yolo] can take another "
                                      "engine's outputs ([Gaussian_yolo] and [region] need darknet's forward)");
        return -1;
    }
    for (i = 1; i < p.net->n; ++i) {
        const layer *l = &p.net->layers[i];
        if (l->type != YOLO) continue;
        if (count < capacity) {
            layer_index[count] = i;
            channels[count] = l->c;
            heights[count] = l->h;
            widths[count] = l->w;
        }
        count++;
    }
    return count;
}

PDN_EXPORT double pdn_yolo_inputs_difference(pdn_detector *d, int n, const float **inputs, int channels_last)
{
    pdn_detector_parts p;
    double worst = 0;
    int i, k = 0;
    pdn_clear_error();
    if (pdn_detector_get_parts(d, &p) || n < 1 || n > p.net->batch || !inputs) {
        pdn_set_error(PDN_ERR_INPUT, "pdn_yolo_inputs_difference: bad arguments");
        return -1;
    }
    for (i = 1; i < p.net->n; ++i) {
        const layer *l = &p.net->layers[i];
        const float *ours, *theirs;
        size_t plane, per_image, c, j;
        int b;
        if (l->type != YOLO) continue;
        if (!inputs[k]) {
            pdn_set_error(PDN_ERR_INPUT, "pdn_yolo_inputs_difference: fewer inputs than [yolo] layers");
            return -1;
        }
        theirs = inputs[k++];
        ours = p.net->layers[i - 1].output;
        plane = (size_t)l->w * l->h;
        per_image = (size_t)l->inputs;
        for (b = 0; b < n; ++b)
            for (c = 0; c < (size_t)l->c; ++c)
                for (j = 0; j < plane; ++j) {
                    const double a = ours[per_image * b + c * plane + j];
                    const double o = channels_last ? theirs[per_image * b + j * (size_t)l->c + c]
                                                   : theirs[per_image * b + c * plane + j];
                    /* as probabilities: darknet takes the logistic of all but w and h; a difference of 0.05 in
                     * a logit of -12 changes nothing a detection could show */
                    const double pa = 1.0 / (1.0 + exp(-a)), po = 1.0 / (1.0 + exp(-o));
                    const double diff = pa > po ? pa - po : po - pa;
                    if (!(diff <= worst)) worst = diff;   /* NaN counts as the worst */
                }
    }
    return worst;
}

PDN_EXPORT int pdn_detect_outputs(pdn_detector *d, int n, const float **inputs, int channels_last,
                                  const int *heights, const int *widths, float thresh, float nms_thresh,
                                  int letterbox, double preprocess_ms, double forward_ms)
{
    pdn_detector_parts p;
    double t0;
    int i, k = 0, threads;
    pdn_clear_error();
    if (pdn_detector_get_parts(d, &p)) {
        pdn_set_error(PDN_ERR_INPUT, "the detector is closed");
        return -1;
    }
    if (n < 1 || n > p.net->batch || !inputs) {
        pdn_set_error(PDN_ERR_INPUT, "%d images given; this network takes 1 to %d at a time", n, p.net->batch);
        return -1;
    }
    if (!(thresh >= 0 && thresh < 1) || !(nms_thresh >= 0 && nms_thresh <= 1)) {
        pdn_set_error(PDN_ERR_INPUT, "thresholds out of range: thresh %g must be in [0, 1), nms %g in [0, 1]",
                      thresh, nms_thresh);
        return -1;
    }
    if (p.post->yolo_layers != p.post->detection_layers) {
        pdn_set_error(PDN_ERR_CONFIG, "only networks whose detection layers are all [yolo] can take another "
                                      "engine's outputs");
        return -1;
    }
    if (letterbox < 0) letterbox = p.letter_box;
    t0 = pdn_now_ms();
    threads = serial_begin();
    for (i = 1; i < p.net->n; ++i) {
        layer *l = &p.net->layers[i];
        layer *prev = &p.net->layers[i - 1];
        const size_t plane = (size_t)l->w * l->h, per_image = (size_t)l->inputs;
        network_state state;
        float *dst;
        const float *src;
        int b;
        if (l->type != YOLO) continue;
        if (!inputs[k] || prev->outputs != l->inputs) {
            serial_end(threads);
            pdn_set_error(PDN_ERR_INPUT, "no input for the [yolo] layer %d", i);
            return -1;
        }
        dst = prev->output;
        src = inputs[k++];
        if (!channels_last) {
            memcpy(dst, src, sizeof(float) * per_image * (size_t)n);
        } else {   /* (n, h, w, c) -> darknet's (n, c, h, w) */
            for (b = 0; b < n; ++b) {
                const float *s = src + per_image * (size_t)b;
                float *o = dst + per_image * (size_t)b;
                size_t c, j;
                for (j = 0; j < plane; ++j)
                    for (c = 0; c < (size_t)l->c; ++c) o[c * plane + j] = s[j * (size_t)l->c + c];
            }
        }
        /* slots n..batch-1 keep stale values: pdn_post_image reads only the first n */
        memset(&state, 0, sizeof state);
        state.net = *p.net;
        state.index = i;
        state.train = 0;
        state.input = dst;
        forward_yolo_layer(*l, state);
#ifdef GPU
        /* CUDA builds: forward_yolo_layer() leaves the activations to its GPU twin (#ifndef GPU) */
        pdn_activate_yolo_layer_on_cpu(l);
#endif
    }
    p.post->res_count = 0;
    for (i = 0; i < n; ++i) {
        if (pdn_post_image(p.post, p.net, i, i, widths[i], heights[i], thresh, nms_thresh, letterbox) < 0) {
            serial_end(threads);
            pdn_set_error(PDN_ERR_MEMORY, "out of memory while collecting detections");
            return -1;
        }
    }
    serial_end(threads);
    p.last_ms[0] = preprocess_ms;
    p.last_ms[1] = forward_ms;
    p.last_ms[2] = pdn_now_ms() - t0;
    return p.post->res_count;
}
