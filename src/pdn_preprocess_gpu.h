/* The CUDA path of the preprocessing (src/pdn_preprocess_gpu.cu), built only with CUDA. */
#ifndef PDN_PREPROCESS_GPU_H
#define PDN_PREPROCESS_GPU_H
#include "pdn_preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pinned staging and device buffers of one detector; they grow to the largest batch seen. */
typedef struct pdn_gpu_stage pdn_gpu_stage;

pdn_gpu_stage *pdn_gpu_stage_create(void);
void pdn_gpu_stage_free(pdn_gpu_stage *stage);
/* Queues on `stream` the upload of n BGR frames and their resize into device_out (n slots of 3*netw*neth floats).
 * Returns 0, or -1 with a CUDA error text in *error. */
int pdn_gpu_prepare_batch(pdn_gpu_stage *stage, const pdn_image_view *images, int n, int netw, int neth,
                          int letterbox, float *device_out, void *stream, const char **error);

#ifdef __cplusplus
}
#endif
#endif
