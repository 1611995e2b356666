/*
 * The GPU path of pdn_prepare_batch(): frames go to the GPU as uint8 BGR (a third of the bytes of the float
 * input) and are resized there, straight into the network's input buffer, on darknet's CUDA stream.  Same
 * arithmetic as pdn_preprocess.c (darknet's resize_image / letterbox_image), one thread per output pixel.
 */
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

#include "pdn_preprocess.h"
#include "pdn_preprocess_gpu.h"

struct pdn_gpu_stage {
    unsigned char *host_pixels;      /* pinned staging of the packed frames */
    unsigned char *device_pixels;
    size_t pixel_capacity;
    pdn_frame_geometry *host_frames; /* pinned */
    pdn_frame_geometry *device_frames;
    long long *host_offsets;         /* pinned: byte offset of each packed frame */
    long long *device_offsets;
    int frame_capacity;
    float *device_table;             /* byte -> float, darknet's v / 255. */
};

__global__ void fill_kernel(float *out, size_t n, float value)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = value;
}

__global__ void resize_kernel(const unsigned char *pixels, const long long *offsets, const pdn_frame_geometry *frames,
                              const float *table, int netw, int neth, float *out)
{
    const int f = blockIdx.z;
    const pdn_frame_geometry g = frames[f];
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    const int r = blockIdx.y * blockDim.y + threadIdx.y;
    if (c >= g.tw || r >= g.th) return;

    int o, next;
    float dx;
    if (c == g.tw - 1 || g.w == 1) {
        o = 3 * (g.w - 1);
        next = 0;
        dx = 0;
    } else {
        const float sx = c * g.w_scale;
        const int ix = (int)sx;
        o = 3 * ix;
        next = 3;
        dx = sx - ix;
    }
    const float sy = r * g.h_scale;
    const int iy = (int)sy;
    const float dy = sy - iy;
    const int two_rows = !(r == g.th - 1 || g.h == 1);
    const unsigned char *row0 = pixels + offsets[f] + (long long)iy * 3 * g.w;
    const unsigned char *row1 = (two_rows && iy + 1 < g.h) ? row0 + 3 * g.w : row0;
    const size_t plane = (size_t)netw * neth;
    float *dst = out + (size_t)f * 3 * plane + (size_t)(g.oy + r) * netw + g.ox + c;
    for (int k = 0; k < 3; ++k) {   /* B, G, R bytes -> planes 2, 1, 0 */
        const float p0 = next ? (1 - dx) * table[row0[o + k]] + dx * table[row0[o + next + k]] : table[row0[o + k]];
        const float p1 = next ? (1 - dx) * table[row1[o + k]] + dx * table[row1[o + next + k]] : table[row1[o + k]];
        dst[(2 - k) * plane] = two_rows ? (1 - dy) * p0 + dy * p1 : (1 - dy) * p0;
    }
}

extern "C" pdn_gpu_stage *pdn_gpu_stage_create(void)
{
    pdn_gpu_stage *s = (pdn_gpu_stage *)calloc(1, sizeof(pdn_gpu_stage));
    if (!s) return NULL;
    if (cudaMalloc((void **)&s->device_table, 256 * sizeof(float)) != cudaSuccess ||
        cudaMemcpy(s->device_table, pdn_byte_table(), 256 * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) {
        pdn_gpu_stage_free(s);
        return NULL;
    }
    return s;
}

extern "C" void pdn_gpu_stage_free(pdn_gpu_stage *s)
{
    if (!s) return;
    cudaFreeHost(s->host_pixels);
    cudaFree(s->device_pixels);
    cudaFreeHost(s->host_frames);
    cudaFree(s->device_frames);
    cudaFreeHost(s->host_offsets);
    cudaFree(s->device_offsets);
    cudaFree(s->device_table);
    free(s);
}

static cudaError_t reserve(pdn_gpu_stage *s, size_t pixels, int frames)
{
    cudaError_t e = cudaSuccess;
    if (pixels > s->pixel_capacity) {
        size_t want = pixels + pixels / 4;
        cudaFreeHost(s->host_pixels);
        cudaFree(s->device_pixels);
        s->host_pixels = NULL;
        s->device_pixels = NULL;
        s->pixel_capacity = 0;
        if ((e = cudaHostAlloc((void **)&s->host_pixels, want, cudaHostAllocDefault)) != cudaSuccess) return e;
        if ((e = cudaMalloc((void **)&s->device_pixels, want)) != cudaSuccess) return e;
        s->pixel_capacity = want;
    }
    if (frames > s->frame_capacity) {
        cudaFreeHost(s->host_frames);
        cudaFree(s->device_frames);
        cudaFreeHost(s->host_offsets);
        cudaFree(s->device_offsets);
        s->frame_capacity = 0;
        if ((e = cudaHostAlloc((void **)&s->host_frames, frames * sizeof(pdn_frame_geometry), 0)) != cudaSuccess ||
            (e = cudaMalloc((void **)&s->device_frames, frames * sizeof(pdn_frame_geometry))) != cudaSuccess ||
            (e = cudaHostAlloc((void **)&s->host_offsets, frames * sizeof(long long), 0)) != cudaSuccess ||
            (e = cudaMalloc((void **)&s->device_offsets, frames * sizeof(long long))) != cudaSuccess)
            return e;
        s->frame_capacity = frames;
    }
    return e;
}

extern "C" int pdn_gpu_prepare_batch(pdn_gpu_stage *s, const pdn_image_view *images, int n, int netw, int neth,
                                     int letterbox, float *device_out, void *stream_handle, const char **error)
{
    cudaStream_t stream = (cudaStream_t)stream_handle;
    size_t total = 0;
    int i, max_tw = 0, max_th = 0;
    cudaError_t e;
    for (i = 0; i < n; ++i) total += (size_t)images[i].width * images[i].height * 3;
    /* the previous batch's copies must be done before the staging buffers are freed (reserve) or overwritten */
    if ((e = cudaStreamSynchronize(stream)) != cudaSuccess) goto fail;
    if ((e = reserve(s, total, n)) != cudaSuccess) goto fail;
    total = 0;
    for (i = 0; i < n; ++i) {
        const pdn_image_view *im = &images[i];
        const size_t row = (size_t)im->width * 3;
        s->host_offsets[i] = (long long)total;
        pdn_frame_geometry_init(&s->host_frames[i], im->width, im->height, netw, neth, letterbox);
        if (s->host_frames[i].tw > max_tw) max_tw = s->host_frames[i].tw;
        if (s->host_frames[i].th > max_th) max_th = s->host_frames[i].th;
        if ((int64_t)row == im->row_stride) {
            memcpy(s->host_pixels + total, im->pixels, row * im->height);
        } else {
            for (int y = 0; y < im->height; ++y)
                memcpy(s->host_pixels + total + row * y, im->pixels + im->row_stride * y, row);
        }
        total += row * im->height;
    }
    if ((e = cudaMemcpyAsync(s->device_pixels, s->host_pixels, total, cudaMemcpyHostToDevice, stream)) ||
        (e = cudaMemcpyAsync(s->device_frames, s->host_frames, n * sizeof(pdn_frame_geometry),
                             cudaMemcpyHostToDevice, stream)) ||
        (e = cudaMemcpyAsync(s->device_offsets, s->host_offsets, n * sizeof(long long), cudaMemcpyHostToDevice,
                             stream)))
        goto fail;
    if (letterbox) {
        const size_t count = (size_t)n * 3 * netw * neth;
        fill_kernel<<<(unsigned)((count + 255) / 256), 256, 0, stream>>>(device_out, count, .5f);
    }
    {
        dim3 block(32, 8);
        dim3 grid((max_tw + block.x - 1) / block.x, (max_th + block.y - 1) / block.y, n);
        resize_kernel<<<grid, block, 0, stream>>>(s->device_pixels, s->device_offsets, s->device_frames,
                                                  s->device_table, netw, neth, device_out);
    }
    if ((e = cudaGetLastError()) != cudaSuccess) goto fail;
    return 0;
fail:
    *error = cudaGetErrorString(e);
    cudaGetLastError();
    return -1;
}
