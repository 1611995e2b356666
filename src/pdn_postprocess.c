/*
 * From the network's output to flat result arrays: decoding, NMS, pixel boxes.
 *
 * Decoding is darknet's own (get_yolo_detections_batch and friends, into a detection buffer allocated once per
 * detector instead of on every call).  NMS is ours: darknet's do_nms_sort()/diounms_sort() re-sort every candidate
 * once per class and compare all pairs, which costs classes x n^2 when an untrained or low-threshold network
 * emits thousands of candidates.  We keep the same rule (per class, highest score first, a kept box suppresses
 * later boxes whose IoU, or DIoU for greedynms/diounms, exceeds the threshold, on darknet's relative box
 * coordinates) but only visit the (box, class) pairs above the threshold, class by class in parallel.
 */
#include "pdn_postprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaussian_yolo_layer.h"
#include "yolo_layer.h"

/* non-static in darknet's network.c, but not declared in its headers */
int num_detections(network *net, float thresh);
void fill_network_boxes(network *net, int w, int h, float thresh, float hier, int *map, int relative,
                        detection *dets, int letter);

static int is_detection_layer(LAYER_TYPE t)
{
    return t == YOLO || t == GAUSSIAN_YOLO || t == REGION || t == DETECTION;
}

int pdn_post_init(pdn_postprocessor *pp, network *net)
{
    int i, capacity = 0, classes = -1, embedding_size = 0, gaussian = 0, coords = 4;
    memset(pp, 0, sizeof *pp);
    for (i = 0; i < net->n; ++i) {
        layer *l = &net->layers[i];
        if (!is_detection_layer(l->type)) continue;
        capacity += l->w * l->h * l->n;
        if (classes < 0) classes = l->classes;
        if (l->classes != classes) return -1;
        pp->detection_layers++;
        if (l->type == YOLO) pp->yolo_layers++;
        if (l->type == GAUSSIAN_YOLO) gaussian = 1;
        if (l->coords > coords) coords = l->coords;
        if (l->embedding_output && l->embedding_size > embedding_size) embedding_size = l->embedding_size;
        pp->nms_kind = l->nms_kind;
        pp->beta_nms = l->beta_nms;
    }
    if (pp->detection_layers == 0) return -2;
    pp->classes = classes;
    pp->dets_capacity = capacity;
    pp->dets = (detection *)calloc((size_t)capacity, sizeof(detection));
    if (!pp->dets) return -3;
    for (i = 0; i < capacity; ++i) {
        detection *d = &pp->dets[i];
        d->prob = (float *)calloc((size_t)classes, sizeof(float));
        d->uc = gaussian ? (float *)calloc(4, sizeof(float)) : NULL;
        d->mask = coords > 4 ? (float *)calloc((size_t)(coords - 4), sizeof(float)) : NULL;
        d->embeddings = embedding_size ? (float *)calloc((size_t)embedding_size, sizeof(float)) : NULL;
        d->embedding_size = embedding_size;
        if (!d->prob || (gaussian && !d->uc) || (coords > 4 && !d->mask) || (embedding_size && !d->embeddings))
            return -3;
    }
    pp->class_start = (int *)calloc((size_t)classes + 1, sizeof(int));
    if (!pp->class_start) return -3;
    return 0;
}

void pdn_post_free(pdn_postprocessor *pp)
{
    int i;
    if (pp->dets) {
        for (i = 0; i < pp->dets_capacity; ++i) {
            free(pp->dets[i].prob);
            free(pp->dets[i].uc);
            free(pp->dets[i].mask);
            free(pp->dets[i].embeddings);
        }
        free(pp->dets);
    }
    free(pp->class_start);
    free(pp->pair_det);
    free(pp->pair_score);
    free(pp->geometry);
    free(pp->suppressed);
    free(pp->res_image);
    free(pp->res_class);
    free(pp->res_conf);
    free(pp->res_xyxy);
    memset(pp, 0, sizeof *pp);
}

/* Box geometry of the (box, class) pairs in structure-of-arrays form, so the IoU loop vectorises. */
enum { LEFT, TOP, RIGHT, BOTTOM, AREA, CENTRE_X, CENTRE_Y, GEOMETRY_PLANES };
#define PLANE(pp, k) ((pp)->geometry + (size_t)(k) * (pp)->pairs_capacity)

static int grow(void **ptr, size_t elem, int need)
{
    void *p = realloc(*ptr, elem * (size_t)need);
    if (!p) return -1;
    *ptr = p;
    return 0;
}

static int reserve_pairs(pdn_postprocessor *pp, int need)
{
    if (need <= pp->pairs_capacity) return 0;
    need = need > 2 * pp->pairs_capacity ? need : 2 * pp->pairs_capacity;
    if (grow((void **)&pp->pair_det, sizeof(int), need) ||
        grow((void **)&pp->pair_score, sizeof(float), need) ||
        grow((void **)&pp->geometry, GEOMETRY_PLANES * sizeof(float), need) ||
        grow((void **)&pp->suppressed, 1, need))
        return -1;
    pp->pairs_capacity = need;
    return 0;
}

static int reserve_results(pdn_postprocessor *pp, int need)
{
    if (need <= pp->res_capacity) return 0;
    need = need > 2 * pp->res_capacity ? need : 2 * pp->res_capacity;
    if (grow((void **)&pp->res_image, sizeof(int32_t), need) ||
        grow((void **)&pp->res_class, sizeof(int32_t), need) ||
        grow((void **)&pp->res_conf, sizeof(float), need) ||
        grow((void **)&pp->res_xyxy, 4 * sizeof(float), need))
        return -1;
    pp->res_capacity = need;
    return 0;
}

/* Decodes image b of the last forward pass into pp->dets; returns the number of candidates. */
static int decode(pdn_postprocessor *pp, network *net, int b, int w, int h, float thresh, int letterbox)
{
    int i, count = 0;
    if (pp->yolo_layers != pp->detection_layers) {
        /* [Gaussian_yolo], [region], [detection]: darknet decodes these for the first image of a batch only;
         * pdn_detector_open() refuses such networks with batch > 1. */
        count = num_detections(net, thresh);
        if (count > pp->dets_capacity) count = pp->dets_capacity;
        fill_network_boxes(net, w, h, thresh, 0.5f, NULL, 1, pp->dets, letterbox);
        return count;
    }
    for (i = 0; i < net->n; ++i) {
        layer l = net->layers[i];
        if (l.type == YOLO)
            count += get_yolo_detections_batch(l, w, h, net->w, net->h, thresh, NULL, 1, pp->dets + count,
                                               letterbox, b);
    }
    return count;
}

typedef struct {
    float score;
    int det;
} scored;

static int by_score_desc(const void *pa, const void *pb)
{
    const scored *a = (const scored *)pa, *b = (const scored *)pb;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return a->det - b->det;   /* deterministic order for equal scores */
}

/* Marks in suppressed[i+1..n) the boxes that box i suppresses: darknet's box_iou above the threshold, or, for
 * greedynms/diounms, box_diou / box_diounms (IoU minus (centre distance / enclosing diagonal)^beta).  The IoU pass
 * is written without branches over plain arrays so the compiler vectorises it; the distance term, which only
 * lowers the score, is computed (scalar, with powf) just for the few pairs whose IoU alone exceeds the threshold.
 * `over` is scratch of n bytes. */
static void suppress_from(const pdn_postprocessor *pp, int start, int i, int n, float nms_thresh,
                          unsigned char *over)
{
    const float *L = PLANE(pp, LEFT) + start, *T = PLANE(pp, TOP) + start;
    const float *R = PLANE(pp, RIGHT) + start, *B = PLANE(pp, BOTTOM) + start, *A = PLANE(pp, AREA) + start;
    unsigned char *sup = pp->suppressed + start;
    const float al = L[i], at = T[i], ar = R[i], ab = B[i], aa = A[i];
    const int distance_term = pp->nms_kind == 1 || pp->nms_kind == 2;   /* GREEDY_NMS, DIOU_NMS */
    unsigned char *out = distance_term ? over : sup;
    int j;
    for (j = i + 1; j < n; ++j) {
        const float iw = fminf(ar, R[j]) - fmaxf(al, L[j]), ih = fminf(ab, B[j]) - fmaxf(at, T[j]);
        const float inter = (iw < 0 || ih < 0) ? 0.f : iw * ih;
        const float uni = aa + A[j] - inter;
        const float iou = (inter == 0 || uni == 0) ? 0.f : inter / uni;
        out[j] = (unsigned char)(out[j] | (iou > nms_thresh));
    }
    if (!distance_term) return;
    {
        const float *X = PLANE(pp, CENTRE_X) + start, *Y = PLANE(pp, CENTRE_Y) + start;
        const float ax = X[i], ay = Y[i], beta = pp->nms_kind == 1 ? 0.6f : pp->beta_nms;
        for (j = i + 1; j < n; ++j) {
            if (!over[j] || sup[j]) continue;
            over[j] = 0;
            {
                const float iw = fminf(ar, R[j]) - fmaxf(al, L[j]), ih = fminf(ab, B[j]) - fmaxf(at, T[j]);
                const float inter = iw * ih, uni = aa + A[j] - inter, iou = inter / uni;
                const float cw = fmaxf(ar, R[j]) - fminf(al, L[j]), ch = fmaxf(ab, B[j]) - fminf(at, T[j]);
                const float c = cw * cw + ch * ch;
                const float d = (ax - X[j]) * (ax - X[j]) + (ay - Y[j]) * (ay - Y[j]);
                sup[j] |= (c == 0 ? iou : iou - powf(d / c, beta)) > nms_thresh;
            }
        }
    }
}

/* Greedy NMS within one class's segment [start, end) of the pair arrays: sort by score, then each box still
 * standing suppresses the weaker ones it overlaps too much. */
static void nms_segment(pdn_postprocessor *pp, int start, int end, float nms_thresh)
{
    int i, n = end - start;
    scored *order;
    unsigned char *over;
    if (n <= 0) return;
    order = (scored *)malloc(sizeof(scored) * (size_t)n);
    if (!order) return;   /* cannot happen in practice; leaves the class unsuppressed */
    for (i = 0; i < n; ++i) {
        order[i].score = pp->pair_score[start + i];
        order[i].det = pp->pair_det[start + i];
    }
    qsort(order, (size_t)n, sizeof(scored), by_score_desc);
    for (i = 0; i < n; ++i) {
        const box bb = pp->dets[order[i].det].bbox;
        const size_t k = (size_t)start + i;
        pp->pair_score[k] = order[i].score;
        pp->pair_det[k] = order[i].det;
        PLANE(pp, LEFT)[k] = bb.x - bb.w / 2;
        PLANE(pp, RIGHT)[k] = bb.x + bb.w / 2;
        PLANE(pp, TOP)[k] = bb.y - bb.h / 2;
        PLANE(pp, BOTTOM)[k] = bb.y + bb.h / 2;
        PLANE(pp, AREA)[k] = bb.w * bb.h;
        PLANE(pp, CENTRE_X)[k] = bb.x;
        PLANE(pp, CENTRE_Y)[k] = bb.y;
        pp->suppressed[k] = 0;
    }
    free(order);
    if (nms_thresh <= 0) return;
    over = (unsigned char *)calloc((size_t)n, 1);
    if (!over) return;
    for (i = 0; i < n; ++i)
        if (!pp->suppressed[start + i]) suppress_from(pp, start, i, n, nms_thresh, over);
    free(over);
}

/* Orders results [first, end) by confidence, highest first (callers get each image's detections sorted). */
static int sort_by_confidence(pdn_postprocessor *pp, int first, int end)
{
    const int n = end - first;
    scored *order;
    int32_t *cls;
    float *xyxy;
    int i;
    if (n < 2) return 0;
    order = (scored *)malloc(sizeof(scored) * (size_t)n);
    cls = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    xyxy = (float *)malloc(4 * sizeof(float) * (size_t)n);
    if (!order || !cls || !xyxy) {
        free(order);
        free(cls);
        free(xyxy);
        return -1;
    }
    for (i = 0; i < n; ++i) {
        order[i].score = pp->res_conf[first + i];
        order[i].det = i;
    }
    qsort(order, (size_t)n, sizeof(scored), by_score_desc);
    memcpy(cls, pp->res_class + first, sizeof(int32_t) * (size_t)n);
    memcpy(xyxy, pp->res_xyxy + 4 * (size_t)first, 4 * sizeof(float) * (size_t)n);
    for (i = 0; i < n; ++i) {
        const int src = order[i].det;
        pp->res_conf[first + i] = order[i].score;
        pp->res_class[first + i] = cls[src];
        memcpy(pp->res_xyxy + 4 * ((size_t)first + i), xyxy + 4 * (size_t)src, 4 * sizeof(float));
    }
    free(order);
    free(cls);
    free(xyxy);
    return 0;
}

int pdn_post_image(pdn_postprocessor *pp, network *net, int image_index, int batch_slot, int w, int h,
                   float thresh, float nms_thresh, int letterbox)
{
    int i, k, n, pairs = 0, classes = pp->classes, kept = 0, first;
    n = decode(pp, net, batch_slot, w, h, thresh, letterbox);

    /* (box, class) pairs above the threshold, grouped by class (counting sort) */
    memset(pp->class_start, 0, sizeof(int) * ((size_t)classes + 1));
    for (i = 0; i < n; ++i)
        for (k = 0; k < classes; ++k)
            if (pp->dets[i].prob[k] > thresh) {
                pp->class_start[k + 1]++;
                pairs++;
            }
    if (pairs == 0) return 0;
    if (reserve_pairs(pp, pairs)) return -1;
    for (k = 0; k < classes; ++k) pp->class_start[k + 1] += pp->class_start[k];
    {
        int *fill = (int *)malloc(sizeof(int) * (size_t)classes);
        if (!fill) return -1;
        memcpy(fill, pp->class_start, sizeof(int) * (size_t)classes);
        for (i = 0; i < n; ++i)
            for (k = 0; k < classes; ++k) {
                const float p = pp->dets[i].prob[k];
                if (p > thresh) {
                    pp->pair_det[fill[k]] = i;
                    pp->pair_score[fill[k]] = p;
                    fill[k]++;
                }
            }
        free(fill);
    }

    /* classes are independent: parallel when there is enough work to pay for the threads */
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 2048)
    for (k = 0; k < classes; ++k) nms_segment(pp, pp->class_start[k], pp->class_start[k + 1], nms_thresh);

    for (i = 0; i < pairs; ++i) kept += !pp->suppressed[i];
    if (reserve_results(pp, pp->res_count + kept)) return -1;
    first = pp->res_count;
    for (k = 0; k < classes; ++k) {
        for (i = pp->class_start[k]; i < pp->class_start[k + 1]; ++i) {
            int r;
            float *xyxy;
            if (pp->suppressed[i]) continue;
            r = pp->res_count++;
            pp->res_image[r] = image_index;
            pp->res_class[r] = k;
            pp->res_conf[r] = pp->pair_score[i];
            /* darknet's relative box -> pixels of the original image, clipped to it (unless asked not to) */
            xyxy = pp->res_xyxy + 4 * (size_t)r;
            xyxy[0] = PLANE(pp, LEFT)[i] * w;
            xyxy[1] = PLANE(pp, TOP)[i] * h;
            xyxy[2] = PLANE(pp, RIGHT)[i] * w;
            xyxy[3] = PLANE(pp, BOTTOM)[i] * h;
            if (!pp->unclipped) {
                xyxy[0] = fminf(fmaxf(xyxy[0], 0.f), (float)w);
                xyxy[1] = fminf(fmaxf(xyxy[1], 0.f), (float)h);
                xyxy[2] = fminf(fmaxf(xyxy[2], 0.f), (float)w);
                xyxy[3] = fminf(fmaxf(xyxy[3], 0.f), (float)h);
            }
        }
    }
    if (sort_by_confidence(pp, first, pp->res_count)) return -1;
    return kept;
}
