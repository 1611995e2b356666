/* darknet's one call into the CUDA driver API: cuCtxGetCurrent(), in dark_cuda.c's cuda_get_context() (which
 * nothing in libpydarknet calls).  Linking libcuda for it would put libcuda.so.1 among the library's DT_NEEDED, and
 * then it could not even be loaded where there is no NVIDIA driver, to say so (pydarknet doctor); the driver
 * wheels do not ship a libcuda to link either.  So that one function is defined here (hidden: darknet's reference
 * binds to it inside the library) and forwards to the driver, found as libcudart finds it: libcuda.so.1 on the
 * loader's path. */
#include <cuda.h>
#include <dlfcn.h>
#include <stddef.h>

typedef CUresult (CUDAAPI *pdn_ctx_get_current_fn)(CUcontext *);

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    static pdn_ctx_get_current_fn real;
    if (!real) {
        void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (driver)
            real = (pdn_ctx_get_current_fn)dlsym(driver, "cuCtxGetCurrent");
    }
    if (!real) {
        if (pctx)
            *pctx = NULL;
        return CUDA_ERROR_NO_DEVICE;
    }
    return real(pctx);
}
