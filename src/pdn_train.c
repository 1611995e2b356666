/*
 * Training and mAP evaluation: darknet's own train_detector() and validate_detector_map(), for a child process.
 *
 * pydarknet.training runs these in a separate Python process (python -m pydarknet._child) and reads what darknet
 * prints, so that a crash, an exit() or a CUDA fault during hours of training cannot take the caller down.
 *
 * Stopping cleanly: SIGINT/SIGTERM (SIGBREAK on Windows: the parent sends CTRL_BREAK_EVENT) only set a flag;
 * after the iteration in progress the training-loop hooks (pdn_train_hooks.c) save
 * <backup>/<cfg>_interrupted.weights and exit with status 0.
 */
#include "pdn_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "utils.h"
#ifdef GPU
#include "dark_cuda.h"
#endif

/* not declared in darknet's headers */
void train_detector(char *datacfg, char *cfgfile, char *weightfile, int *gpus, int ngpus, int clear, int dont_show,
                    int calc_map, float thresh, float iou_thresh, int mjpeg_port, int show_imgs,
                    int benchmark_layers, char *chart_path, int mAP_epochs);

static void request_stop(int sig)
{
    (void)sig;
    pdn_train_stop_requested = 1;
}

static void line_buffered_output(void)
{
    /* the parent reads progress from a pipe: without this, stdout would arrive in 4 KB lumps.  Windows' C
     * runtimes treat _IOLBF as full buffering: unbuffered there. */
#if defined(_WIN32)
    setvbuf(stdout, NULL, _IONBF, 0);
#else
    setvbuf(stdout, NULL, _IOLBF, 0);
#endif
    setvbuf(stderr, NULL, _IONBF, 0);
}

PDN_EXPORT int pdn_train_detector(const char *data_path, const char *cfg_path, const char *weights_path,
                                  const int *gpus, int ngpus, int clear, int calc_map, int map_epochs,
                                  float iou_thresh, const char *backup_dir)
{
    int cpu_only[1] = {0};
    char *base;
    line_buffered_output();
    signal(SIGINT, request_stop);
#ifdef SIGTERM
    signal(SIGTERM, request_stop);
#endif
#ifdef SIGBREAK
    signal(SIGBREAK, request_stop);
#endif
    base = basecfg((char *)cfg_path);
    snprintf(pdn_train_interrupted_weights, sizeof pdn_train_interrupted_weights, "%s/%s_interrupted.weights",
             backup_dir, base);
    free(base);
#ifdef GPU
    if (ngpus < 1) {
        /* darknet compiles its CPU training buffers (delta, x, x_norm) only into CPU builds, and the CUDA build's
         * training loop updates weights on the GPU: training on the CPU needs a CPU build */
        fprintf(stderr, "pydarknet: this build has CUDA, and darknet's CUDA builds train on a GPU only\n");
        return 2;
    }
    (void)cpu_only;
    gpu_index = gpus[0];
    cuda_set_device(gpus[0]);
#else
    if (ngpus > 0) {
        fprintf(stderr, "pydarknet: GPUs were requested, but this build has no CUDA\n");
        return 2;
    }
    gpus = cpu_only;
    ngpus = 1;
#endif
    train_detector((char *)data_path, (char *)cfg_path, weights_path && weights_path[0] ? (char *)weights_path : NULL,
                   (int *)gpus, ngpus, clear, /*dont_show*/ 1, calc_map, /*thresh*/ .25f, iou_thresh,
                   /*mjpeg_port*/ -1, /*show_imgs*/ 0, /*benchmark_layers*/ 0, /*chart_path*/ NULL, map_epochs);
    fflush(stdout);
    return 0;
}

PDN_EXPORT float pdn_validate_detector_map(const char *data_path, const char *cfg_path, const char *weights_path,
                                           float thresh_calc_avg_iou, float iou_thresh, int map_points,
                                           int letterbox, int gpu)
{
    line_buffered_output();
#ifdef GPU
    if (gpu < 0) {
        /* the CPU forward of a CUDA build skips the [yolo] activations and lacks mish/swish buffers */
        fprintf(stderr, "pydarknet: this build has CUDA, and darknet's CUDA builds measure mAP on a GPU only\n");
        return -1;
    }
    gpu_index = gpu;
    cuda_set_device(gpu);
#else
    if (gpu >= 0) {
        fprintf(stderr, "pydarknet: a GPU was requested, but this build has no CUDA\n");
        return -1;
    }
#endif
    return validate_detector_map((char *)data_path, (char *)cfg_path, (char *)weights_path, thresh_calc_avg_iou,
                                 iou_thresh, map_points, letterbox, NULL);
}
