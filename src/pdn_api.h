/*
 * pydarknet's C API: a small, flat layer over darknet for cffi (pydarknet/_native.py).
 *
 * Only plain C types and one opaque handle cross this boundary, so the Python side never mirrors darknet's large
 * structs (mirrored structs drift between darknet versions and then crash).  The block between the two "cffi"
 * markers is read verbatim by pydarknet/_native.py as its cdef: keep it free of preprocessor lines, and bump
 * PDN_ABI_VERSION whenever a declaration in it changes.
 *
 * Errors: functions return NULL or a negative number; pdn_last_error() and pdn_last_error_kind() then describe
 * the failure (per thread).  darknet's own exit() calls on bad input are turned into such errors (see pdn_guard.c).
 */
#ifndef PDN_API_H
#define PDN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cffi cdef begin ---- */
enum { PDN_ABI_VERSION = 2 };

enum pdn_error_kind {
    PDN_OK = 0,
    PDN_ERR_CONFIG = 1,    /* the .cfg is missing, malformed or inconsistent */
    PDN_ERR_WEIGHTS = 2,   /* the .weights file is missing, truncated, or made for another cfg */
    PDN_ERR_CUDA = 3,      /* CUDA/cuDNN failed, or a GPU was asked of a CPU build */
    PDN_ERR_MEMORY = 4,    /* out of host or device memory */
    PDN_ERR_INPUT = 5,     /* bad arguments (image sizes, batch, thresholds) */
    PDN_ERR_INTERNAL = 6,  /* darknet stopped somewhere else */
    PDN_ERR_FILE = 7       /* darknet could not open a file */
};

typedef struct pdn_detector pdn_detector;

typedef struct {
    int width;             /* network input */
    int height;
    int channels;
    int batch;             /* images per forward pass */
    int classes;           /* of the detection layers */
    int gpu;               /* CUDA device, -1 on the CPU */
    int detection_layers;  /* [yolo], [Gaussian_yolo] and [region] layers */
    int nms_kind;          /* darknet's NMS_KIND of the last detection layer: 0 default, 1 greedy (DIoU), 2 DIoU */
    float beta_nms;
    int layers;
    int letter_box;        /* [net] letter_box=1: the cfg asks for letterboxed input */
    int64_t weights_bytes; /* size of the weights file that was loaded */
    uint64_t seen;         /* images seen in training, from the weights header */
} pdn_network_info;

int pdn_abi_version(void);
const char *pdn_build_info(void);
int pdn_last_error_kind(void);
const char *pdn_last_error(void);

int pdn_cuda_device_count(void);
int pdn_cuda_device_info(int device, char *name, int name_size, int *major, int *minor,
                         uint64_t *total_memory, uint64_t *free_memory);

pdn_detector *pdn_detector_open(const char *cfg_path, const char *weights_path, int batch, int gpu, int verbose);
void pdn_detector_close(pdn_detector *detector);
int pdn_detector_info(const pdn_detector *detector, pdn_network_info *info);

/* images: n pointers to BGR uint8 pixels; letterbox: 0, 1, or -1 for the cfg's choice.  Returns the number of
 * detections (fetch them with pdn_detector_results) or -1. */
int pdn_detect(pdn_detector *detector, int n_images, const uint8_t **images, const int *heights, const int *widths,
               const int64_t *row_strides, float thresh, float nms_thresh, int letterbox);
int pdn_detector_results(const pdn_detector *detector, int32_t *image_index, int32_t *class_id, float *confidence,
                         float *xyxy, int capacity);
int pdn_detector_timings(const pdn_detector *detector, double *preprocess_ms, double *forward_ms,
                         double *postprocess_ms);
/* clip 1 (the default): boxes are clipped to the image; 0: as darknet decodes them (darknet's mAP does not clip). */
int pdn_detector_set_clip(pdn_detector *detector, int clip);

int pdn_preprocess(pdn_detector *detector, int n_images, const uint8_t **images, const int *heights,
                   const int *widths, const int64_t *row_strides, int letterbox, float *out);
int pdn_forward_only(pdn_detector *detector, const float *input);

/* A second inference engine (pydarknet/_opencv_backend.py): pdn_yolo_inputs lists the [yolo] layers whose inputs
 * it must compute from pdn_preprocess's output (darknet layer index, channels, height, width; returns how many,
 * -1 when a detection layer is not [yolo]); pdn_detect_outputs takes them (inputs[k]: n x c x h x w floats, or
 * n x h x w x c with channels_last=1), runs darknet's [yolo] layers, decoding and our NMS, and returns the number
 * of detections as pdn_detect does.  preprocess_ms and forward_ms are kept for pdn_detector_timings.  Both, and
 * pdn_preprocess_serial (pdn_preprocess on the calling thread alone), leave OpenMP's workers asleep for the other
 * engine's threads. */
/* After darknet's forward pass (pdn_detect) on the same images: the largest difference of logistic(value) between
 * darknet's and the other engine's inputs of the [yolo] layers (NaN where a value is NaN), -1 on bad arguments.
 * The automatic backend choice checks the other engine with it. */
double pdn_yolo_inputs_difference(pdn_detector *detector, int n_images, const float **inputs, int channels_last);
int pdn_preprocess_serial(pdn_detector *detector, int n_images, const uint8_t **images, const int *heights,
                          const int *widths, const int64_t *row_strides, int letterbox, float *out);
int pdn_yolo_inputs(pdn_detector *detector, int *layer_index, int *channels, int *heights, int *widths,
                    int capacity);
int pdn_detect_outputs(pdn_detector *detector, int n_images, const float **inputs, int channels_last,
                       const int *heights, const int *widths, float thresh, float nms_thresh, int letterbox,
                       double preprocess_ms, double forward_ms);

/* What darknet's CPU gemm() runs on in this library: OpenBLAS's sgemm (and from where) or darknet's own, and why
 * (src/pdn_blas.c). */
const char *pdn_blas_info(void);
/* For the tests: largest |difference| between the OpenBLAS gemm and darknet's on a random problem, -1 without it. */
double pdn_blas_selftest(int ta, int tb, int m, int n, int k, float beta);

/* Parse a cfg (darknet's random initialisation, seeded) and save its untrained weights: a starting point for
 * training from scratch and a stand-in model for speed-only benchmarks.  unit_variance=1 sets batch-norm rolling
 * variances to 1 (darknet's 0 makes an untrained network saturate when used for inference). */
int pdn_write_initial_weights(const char *cfg_path, const char *weights_path, unsigned int seed, int unit_variance);

/* darknet's train_detector() and validate_detector_map(), for a child process (pydarknet._child): they print
 * darknet's progress to stdout and may exit().  ngpus = 0 trains on the CPU.  SIGINT/SIGTERM during training save
 * <backup_dir>/<cfg name>_interrupted.weights after the current iteration and exit(0). */
int pdn_train_detector(const char *data_path, const char *cfg_path, const char *weights_path, const int *gpus,
                       int ngpus, int clear, int calc_map, int map_epochs, float iou_thresh, const char *backup_dir);
float pdn_validate_detector_map(const char *data_path, const char *cfg_path, const char *weights_path,
                                float thresh_calc_avg_iou, float iou_thresh, int map_points, int letterbox, int gpu);
/* ---- cffi cdef end ---- */

#ifdef __cplusplus
}
#endif
#endif /* PDN_API_H */
