/* Internal: what src/pdn_backend.c (detection from another engine's forward pass) needs of a detector, whose
 * struct is private to pdn_api.c. */
#ifndef PDN_BACKEND_H
#define PDN_BACKEND_H

#include "darknet.h"
#include "pdn_api.h"
#include "pdn_postprocess.h"

typedef struct {
    network *net;
    pdn_postprocessor *post;
    double *last_ms;          /* preprocess, forward, postprocess */
    int letter_box;           /* the cfg's letter_box */
} pdn_detector_parts;

/* Defined in pdn_api.c.  Returns 0, or -1 for a closed (NULL) detector. */
int pdn_detector_get_parts(pdn_detector *d, pdn_detector_parts *parts);

#ifdef GPU
/* Defined in pdn_api.c.  The [yolo] output activations darknet's forward_yolo_layer() applies only in CPU builds,
 * applied to a layer computed on the CPU of a CUDA build. */
void pdn_activate_yolo_layer_on_cpu(const layer *l);
#endif

#endif
