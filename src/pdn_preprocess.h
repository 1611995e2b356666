#ifndef PDN_PREPROCESS_H
#define PDN_PREPROCESS_H
#include <stdint.h>

typedef struct {
    const uint8_t *pixels;   /* BGR, 3 bytes a pixel */
    int width;
    int height;
    int64_t row_stride;      /* bytes from one row to the next */
} pdn_image_view;

/* Resize (or letterbox) each frame to netw x neth, BGR -> RGB, / 255, into n consecutive planar CHW slots of
 * `out`.  Returns 0, or -1 when out of memory. */
int pdn_prepare_batch(const pdn_image_view *images, int n, int netw, int neth, int letterbox, float *out);

void pdn_letterbox_size(int w, int h, int netw, int neth, int *new_w, int *new_h);

#endif
