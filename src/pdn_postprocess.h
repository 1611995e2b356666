#ifndef PDN_POSTPROCESS_H
#define PDN_POSTPROCESS_H
#include <stdint.h>

#include "darknet.h"

/* Scratch and result buffers of one detector; they grow to the largest batch seen and are then reused. */
typedef struct {
    int classes;
    int detection_layers;
    int yolo_layers;
    int nms_kind;
    float beta_nms;
    int unclipped;            /* 1: boxes as darknet decodes them, which may reach past the image (its mAP's view) */
    detection *dets;          /* darknet's decoded candidates of one image */
    int dets_capacity;
    int *class_start;         /* classes + 1 offsets into the pair arrays */
    int *pair_det;            /* (candidate, class) pairs above the threshold */
    float *pair_score;
    float *geometry;          /* per pair, as planes of pairs_capacity floats: see GEOMETRY_PLANES */
    unsigned char *suppressed;
    int pairs_capacity;
    int32_t *res_image;       /* results of the current batch */
    int32_t *res_class;
    float *res_conf;
    float *res_xyxy;
    int res_count;
    int res_capacity;
} pdn_postprocessor;

/* Returns 0, -1 when detection layers disagree on the number of classes, -2 when there is none, -3 out of memory. */
int pdn_post_init(pdn_postprocessor *pp, network *net);
void pdn_post_free(pdn_postprocessor *pp);
/* Appends the detections of batch slot `batch_slot` (an image of w x h pixels) to the results under
 * `image_index`; returns how many, or -1 when out of memory. */
int pdn_post_image(pdn_postprocessor *pp, network *net, int image_index, int batch_slot, int w, int h,
                   float thresh, float nms_thresh, int letterbox);

#endif
