/*
 * Turning a batch of uint8 BGR frames of any size into darknet's network input, in one pass per frame.
 *
 * darknet's own path (load_image -> resize_image or letterbox_image) converts the whole image to planar float
 * RGB, resizes it horizontally into a temporary image, then vertically into a third one.  We produce the very same
 * numbers (the same interpolation formula, including darknet's quirks at the last row and column) straight from
 * the interleaved BGR bytes into the planar RGB input, without the temporaries, in parallel over all rows of the
 * batch.  tests/test_detector_vs_darknet.py checks the result against darknet's executable.
 */
#include "pdn_preprocess.h"

#include <stdlib.h>
#include <string.h>

/* v / 255 exactly as darknet computes it: (float)data / 255. is a double division rounded to float */
static float byte_to_float[256];
static int byte_to_float_ready;

static void init_table(void)
{
    int v;
    if (byte_to_float_ready) return;
    for (v = 0; v < 256; ++v) byte_to_float[v] = (float)((double)v / 255.);
    byte_to_float_ready = 1;
}

const float *pdn_byte_table(void)
{
    init_table();
    return byte_to_float;
}

void pdn_frame_geometry_init(pdn_frame_geometry *g, int w, int h, int netw, int neth, int letterbox)
{
    g->w = w;
    g->h = h;
    if (letterbox) {   /* darknet's letterbox_image(): fit inside, keep the aspect ratio, centre */
        if (((float)netw / w) < ((float)neth / h)) {
            g->tw = netw;
            g->th = (h * netw) / w;
        } else {
            g->th = neth;
            g->tw = (w * neth) / h;
        }
        /* a strip of an image (1000x2, say) would round to 0 rows: keep at least one */
        if (g->tw < 1) g->tw = 1;
        if (g->th < 1) g->th = 1;
        g->ox = (netw - g->tw) / 2;
        g->oy = (neth - g->th) / 2;
    } else {
        g->tw = netw;
        g->th = neth;
        g->ox = g->oy = 0;
    }
    /* darknet's resize_image() scales; one target row or column samples the first (darknet divides by 0 there,
     * and 0 * inf = NaN would index far outside the image) */
    g->w_scale = g->tw > 1 ? (float)(w - 1) / (g->tw - 1) : 0.f;
    g->h_scale = g->th > 1 ? (float)(h - 1) / (g->th - 1) : 0.f;
}

typedef struct {
    const uint8_t *pixels;
    int64_t stride;
    pdn_frame_geometry g;
    int *col_offset;     /* per resized column: byte offset of the left source pixel */
    int *col_next;       /* 3 where the right neighbour is used, 0 at the last column */
    float *col_dx;       /* weight of the right neighbour */
    float *out;          /* this image's slot in the batch input (3 planes of netw*neth) */
} frame_plan;

/* One output row of one frame: darknet's two-pass bilinear resize, fused. */
static void resize_row(const frame_plan *p, int r, int netw, int neth)
{
    const float sy = r * p->g.h_scale;
    const int iy = (int)sy;
    const float dy = sy - iy;
    /* darknet skips the second source row at the last output row (and for 1-pixel-high images) */
    const int two_rows = !(r == p->g.th - 1 || p->g.h == 1);
    const uint8_t *row0 = p->pixels + (int64_t)iy * p->stride;
    /* (darknet would read past the last row if rounding ever put iy there; we stay inside) */
    const uint8_t *row1 = (two_rows && iy + 1 < p->g.h) ? row0 + p->stride : row0;
    const size_t plane = (size_t)netw * neth;
    float *out_r = p->out + (size_t)(p->g.oy + r) * netw + p->g.ox;
    float *out_g = out_r + plane;
    float *out_b = out_g + plane;
    int c;
    for (c = 0; c < p->g.tw; ++c) {
        const int o = p->col_offset[c];
        const int n = p->col_next[c];
        const float dx = p->col_dx[c];
        float part0[3], part1[3];
        int k;
        for (k = 0; k < 3; ++k) {   /* k: B, G, R byte of the pixel */
            part0[k] = n ? (1 - dx) * byte_to_float[row0[o + k]] + dx * byte_to_float[row0[o + n + k]]
                         : byte_to_float[row0[o + k]];
            part1[k] = n ? (1 - dx) * byte_to_float[row1[o + k]] + dx * byte_to_float[row1[o + n + k]]
                         : byte_to_float[row1[o + k]];
        }
        if (two_rows) {
            out_r[c] = (1 - dy) * part0[2] + dy * part1[2];
            out_g[c] = (1 - dy) * part0[1] + dy * part1[1];
            out_b[c] = (1 - dy) * part0[0] + dy * part1[0];
        } else {
            out_r[c] = (1 - dy) * part0[2];
            out_g[c] = (1 - dy) * part0[1];
            out_b[c] = (1 - dy) * part0[0];
        }
    }
}

int pdn_prepare_batch(const pdn_image_view *images, int n, int netw, int neth, int letterbox, float *out)
{
    frame_plan *plans;
    int *row_start;
    int total_rows = 0, i;
    const size_t image_floats = (size_t)3 * netw * neth;

    init_table();
    plans = (frame_plan *)calloc((size_t)n, sizeof *plans);
    row_start = (int *)calloc((size_t)n + 1, sizeof *row_start);
    if (!plans || !row_start) {
        free(plans);
        free(row_start);
        return -1;
    }
    for (i = 0; i < n; ++i) {
        frame_plan *p = &plans[i];
        int c;
        p->pixels = images[i].pixels;
        p->stride = images[i].row_stride;
        p->out = out + (size_t)i * image_floats;
        pdn_frame_geometry_init(&p->g, images[i].width, images[i].height, netw, neth, letterbox);
        if (letterbox) {
            size_t k;
            for (k = 0; k < image_floats; ++k) p->out[k] = .5f;   /* darknet's grey border */
        }
        p->col_offset = (int *)malloc(sizeof(int) * p->g.tw);
        p->col_next = (int *)malloc(sizeof(int) * p->g.tw);
        p->col_dx = (float *)malloc(sizeof(float) * p->g.tw);
        if (!p->col_offset || !p->col_next || !p->col_dx) {
            n = i + 1;
            total_rows = -1;
            break;
        }
        for (c = 0; c < p->g.tw; ++c) {
            if (c == p->g.tw - 1 || p->g.w == 1) {
                p->col_offset[c] = 3 * (p->g.w - 1);
                p->col_next[c] = 0;
                p->col_dx[c] = 0;
            } else {
                const float sx = c * p->g.w_scale;
                const int ix = (int)sx;
                p->col_offset[c] = 3 * ix;
                p->col_next[c] = 3;
                p->col_dx[c] = sx - ix;
            }
        }
        row_start[i + 1] = row_start[i] + p->g.th;
        total_rows = row_start[i + 1];
    }

    if (total_rows > 0) {
        int r;
        /* rows of all frames in one parallel loop, so a batch of one frame is parallel too */
#pragma omp parallel for schedule(static) if (total_rows * netw > 65536)
        for (r = 0; r < total_rows; ++r) {
            int f = 0;
            while (row_start[f + 1] <= r) ++f;
            resize_row(&plans[f], r - row_start[f], netw, neth);
        }
    }
    for (i = 0; i < n; ++i) {
        free(plans[i].col_offset);
        free(plans[i].col_next);
        free(plans[i].col_dx);
    }
    free(plans);
    free(row_start);
    return total_rows < 0 ? -1 : 0;
}
