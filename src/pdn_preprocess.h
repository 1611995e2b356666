#ifndef PDN_PREPROCESS_H
#define PDN_PREPROCESS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const uint8_t *pixels;   /* BGR, 3 bytes a pixel */
    int width;
    int height;
    int64_t row_stride;      /* bytes from one row to the next */
} pdn_image_view;

/* Where and how big one frame lands in the network input, with darknet's resize_image() scales. */
typedef struct {
    int w, h;            /* source size */
    int tw, th;          /* resized size */
    int ox, oy;          /* top-left of the resized frame in the network input (letterbox borders) */
    float w_scale, h_scale;
} pdn_frame_geometry;

void pdn_frame_geometry_init(pdn_frame_geometry *g, int w, int h, int netw, int neth, int letterbox);

/* darknet's byte -> float conversion, (float)(v / 255.) for v in 0..255 */
const float *pdn_byte_table(void);

/* Resize (or letterbox) each frame to netw x neth, BGR -> RGB, / 255, into n consecutive planar CHW slots of
 * `out`.  Returns 0, or -1 when out of memory. */
int pdn_prepare_batch(const pdn_image_view *images, int n, int netw, int neth, int letterbox, float *out);

#ifdef __cplusplus
}
#endif
#endif
