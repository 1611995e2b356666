# Decide whether and how darknet is built with CUDA, cuDNN and FP16 (CUDNN_HALF).
#
# In:  PYDARKNET_CUDA (AUTO|ON|OFF|WHEELS), PYDARKNET_CUDNN, PYDARKNET_CUDNN_HALF (AUTO|ON|OFF),
#      PYDARKNET_CUDA_ARCHITECTURES
# Out: PYDARKNET_WITH_CUDA, PYDARKNET_WITH_CUDNN, PYDARKNET_WITH_HALF (ON/OFF), PYDARKNET_CUDA_ARCHS (list),
#      PYDARKNET_CUDNN_INCLUDE_DIR, PYDARKNET_CUDNN_LIBRARY, PYDARKNET_CUDNN_VERSION, PYDARKNET_CUDA_VERSION,
#      PYDARKNET_RUNTIME_RPATH (where the loader should look for cuDNN/cuBLAS at run time),
#      PYDARKNET_BUILD_NOTES (why something that was asked for AUTO is off)
#
# AUTO never fails: it builds for the CPU and says why.  ON fails the configure step loudly.  WHEELS is ON with the
# toolkit and cuDNN taken from the nvidia-* wheels of the building Python (cmake/PydarknetCudaWheels.cmake); cuDNN
# is then required unless PYDARKNET_CUDNN=OFF.
#
# Architectures: 'native' is the GPUs present, or where there is none, 'portable': sm_75, 80, 86, 89 and 90 as
# machine code plus compute_90 PTX, which newer GPUs compile when loading it (Turing to Hopper natively, FP16
# Tensor Cores on all of them).
set(PYDARKNET_PORTABLE_CUDA_ARCHS 75-real 80-real 86-real 89-real 90)

set(PYDARKNET_WITH_CUDA OFF)
set(PYDARKNET_WITH_CUDNN OFF)
set(PYDARKNET_WITH_HALF OFF)
set(PYDARKNET_CUDA_ARCHS "")
set(PYDARKNET_CUDNN_VERSION "")
set(PYDARKNET_CUDA_VERSION "")
set(PYDARKNET_RUNTIME_RPATH "")
set(PYDARKNET_BUILD_NOTES "")

function(_pdn_cuda_unavailable mode why)
  if(mode MATCHES "^(ON|WHEELS)$")
    message(FATAL_ERROR "PYDARKNET_CUDA=${mode}, but ${why}. Install the missing parts or build with "
                        "PYDARKNET_CUDA=OFF.")
  endif()
  # cuDNN or FP16 asked for by name cannot quietly become a CPU build
  foreach(var PYDARKNET_CUDNN PYDARKNET_CUDNN_HALF)
    if(${var} STREQUAL "ON")
      message(FATAL_ERROR "${var}=ON needs CUDA, but ${why}.")
    endif()
  endforeach()
  message(WARNING "pydarknet: building for the CPU: ${why} (set PYDARKNET_CUDA=OFF to silence this).")
  set(PYDARKNET_BUILD_NOTES "CPU build: ${why}" PARENT_SCOPE)
endfunction()

# Compute capabilities of the GPUs on this machine, as "90;80", or empty.
function(_pdn_detect_gpu_archs out)
  set(archs "")
  find_program(_pdn_nvidia_smi nvidia-smi)
  if(_pdn_nvidia_smi)
    execute_process(COMMAND "${_pdn_nvidia_smi}" --query-gpu=compute_cap --format=csv,noheader
      OUTPUT_VARIABLE caps RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND caps)
      string(REPLACE "\n" ";" caps "${caps}")
      foreach(cap ${caps})
        string(STRIP "${cap}" cap)
        if(cap MATCHES "^([0-9]+)\\.([0-9]+)$")
          list(APPEND archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
        endif()
      endforeach()
      list(REMOVE_DUPLICATES archs)
    endif()
  endif()
  set(${out} "${archs}" PARENT_SCOPE)
endfunction()

# Candidate prefixes of cuDNN: CUDNN_ROOT, the CUDA toolkit, and the nvidia-cudnn-cu12/-cu13 wheels in any
# site-packages the building Python (or the environment it builds for) can see.
function(_pdn_cudnn_hints out sitepackages_out)
  set(hints "")
  foreach(v CUDNN_ROOT CUDNN_ROOT_DIR CUDNN_PATH CUDA_PATH CUDA_HOME)
    if(DEFINED ${v})
      list(APPEND hints "${${v}}")
    endif()
    if(DEFINED ENV{${v}})
      list(APPEND hints "$ENV{${v}}")
    endif()
  endforeach()
  if(CUDAToolkit_LIBRARY_ROOT)
    list(APPEND hints "${CUDAToolkit_LIBRARY_ROOT}")
  endif()
  set(sites "")
  find_package(Python COMPONENTS Interpreter QUIET)
  if(Python_EXECUTABLE)
    execute_process(COMMAND "${Python_EXECUTABLE}" -c [=[
import glob, os, site, sys, sysconfig
roots = set(site.getsitepackages() + [site.getusersitepackages()])
for base in {sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV", "")} - {""}:
    paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
    roots.update((paths["purelib"], paths["platlib"]))
for root in sorted(roots):
    for d in sorted(glob.glob(os.path.join(root, "nvidia", "*"))):
        if glob.glob(os.path.join(d, "include", "cudnn.h")):
            print(root + "|" + d)
]=]
      OUTPUT_VARIABLE found ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(found)
      string(REPLACE "\n" ";" found "${found}")
      foreach(entry ${found})
        string(REPLACE "|" ";" parts "${entry}")
        list(GET parts 0 site)
        list(GET parts 1 prefix)
        list(APPEND hints "${prefix}")
        list(APPEND sites "${site}")
      endforeach()
    endif()
  endif()
  set(${out} "${hints}" PARENT_SCOPE)
  set(${sitepackages_out} "${sites}" PARENT_SCOPE)
endfunction()

if(PYDARKNET_CUDA STREQUAL "OFF")
  foreach(var PYDARKNET_CUDNN PYDARKNET_CUDNN_HALF)
    if(${var} STREQUAL "ON")
      message(FATAL_ERROR "${var}=ON contradicts PYDARKNET_CUDA=OFF")
    endif()
  endforeach()
  set(PYDARKNET_BUILD_NOTES "CPU build: PYDARKNET_CUDA=OFF")
  return()
endif()

set(PYDARKNET_WHEEL_SITE "")
if(PYDARKNET_CUDA STREQUAL "WHEELS")
  include(PydarknetCudaWheels)
  pydarknet_cuda_from_wheels()   # sets CMAKE_CUDA_COMPILER and CUDAToolkit_ROOT to a toolkit made of the wheels
  if(PYDARKNET_CUDNN STREQUAL "AUTO")
    set(PYDARKNET_CUDNN ON)
  endif()
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _pdn_cuda_unavailable("${PYDARKNET_CUDA}" "no CUDA compiler (nvcc) was found")
  return()
endif()
get_filename_component(_pdn_nvcc_dir "${CMAKE_CUDA_COMPILER}" DIRECTORY)
find_package(CUDAToolkit QUIET)
set(_pdn_missing "")
foreach(lib cudart cublas curand)
  if(NOT TARGET CUDA::${lib})
    list(APPEND _pdn_missing "${lib}")
  endif()
endforeach()
if(_pdn_missing)
  string(REPLACE ";" ", " _pdn_missing "${_pdn_missing}")
  _pdn_cuda_unavailable("${PYDARKNET_CUDA}" "the CUDA toolkit of ${CMAKE_CUDA_COMPILER} (libraries in ${CUDAToolkit_LIBRARY_DIR}) lacks ${_pdn_missing} (PYDARKNET_CUDA=wheels takes the whole toolkit from the registry's nvidia-* wheels: docs/gpu.md)")
  return()
endif()

# Target architectures: 'native' means the GPUs present; with none present, the portable set.
set(_pdn_archs "${PYDARKNET_CUDA_ARCHITECTURES}")
if(_pdn_archs STREQUAL "native")
  _pdn_detect_gpu_archs(_pdn_archs)
  if(NOT _pdn_archs)
    message(STATUS "pydarknet: no GPU visible; compiling for the portable set of CUDA architectures")
    set(_pdn_archs "portable")
  endif()
endif()
if(_pdn_archs STREQUAL "portable")
  set(_pdn_archs ${PYDARKNET_PORTABLE_CUDA_ARCHS})
endif()
set(CMAKE_CUDA_ARCHITECTURES "${_pdn_archs}")
# the shared CUDA runtime, as CUDA::cudart below: one runtime per process, the one the nvidia-cuda-runtime wheel
# or the toolkit provides (not a second, static copy inside libpydarknet)
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
enable_language(CUDA)
set(PYDARKNET_CUDA_VERSION "${CMAKE_CUDA_COMPILER_VERSION}")

# The lowest architecture we compile for decides FP16: darknet's CUDNN_HALF needs Tensor Cores (7.0+) on all of
# them.  (darknet's own CMake only knows 70..86 and turns FP16 off for 89/90/100/120; we compare numbers instead.)
if(_pdn_archs MATCHES "^all")
  execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --list-gpu-arch OUTPUT_VARIABLE _pdn_supported ERROR_QUIET)
  string(REGEX MATCHALL "compute_([0-9]+)" _pdn_supported "${_pdn_supported}")
  string(REGEX REPLACE "compute_" "" _pdn_numeric "${_pdn_supported}")
else()
  string(REGEX REPLACE "-(real|virtual)" "" _pdn_numeric "${_pdn_archs}")
  string(REGEX REPLACE "[a-z]" "" _pdn_numeric "${_pdn_numeric}")
endif()
set(_pdn_min_arch 1000)
foreach(a ${_pdn_numeric})
  if(a LESS _pdn_min_arch)
    set(_pdn_min_arch ${a})
  endif()
endforeach()
set(PYDARKNET_CUDA_ARCHS "${_pdn_archs}")
set(PYDARKNET_WITH_CUDA ON)
# At run time the loader must find cuBLAS, cuRAND, the CUDA runtime and cuDNN.  From wheels: relative to where
# libpydarknet is installed (site-packages/pydarknet/_lib), in the same site-packages, so the installed package can
# move with its environment; pydarknet/_cuda_libs.py covers other layouts.  Otherwise: where the toolkit is.
set(PYDARKNET_RUNTIME_RPATH "")
function(_pdn_rpath_into_site dir)
  file(RELATIVE_PATH rel "${PYDARKNET_WHEEL_SITE}" "${dir}")
  set(rpath ${PYDARKNET_RUNTIME_RPATH} "$ORIGIN/../../${rel}")
  if(NOT PYDARKNET_WHEEL_ISOLATED)   # a build in a lasting environment: its absolute path too (build folders)
    list(APPEND rpath "${dir}")
  endif()
  set(PYDARKNET_RUNTIME_RPATH "${rpath}" PARENT_SCOPE)
endfunction()
if(PYDARKNET_WHEEL_SITE)
  _pdn_rpath_into_site("${PYDARKNET_WHEEL_CUDA_DIR}/lib")
else()
  set(PYDARKNET_RUNTIME_RPATH "${CUDAToolkit_LIBRARY_DIR}")
endif()

# cuDNN
if(NOT PYDARKNET_CUDNN STREQUAL "OFF")
  if(PYDARKNET_WHEEL_SITE)
    # only the wheel's cuDNN: one built for another CUDA major elsewhere on the system would not fit the toolkit
    set(_pdn_hints "${PYDARKNET_WHEEL_CUDNN_DIR}")
    set(_pdn_cudnn_only_hints NO_DEFAULT_PATH)
  else()
    _pdn_cudnn_hints(_pdn_hints _pdn_sites)
    set(_pdn_cudnn_only_hints "")
  endif()
  find_path(PYDARKNET_CUDNN_INCLUDE_DIR NAMES cudnn.h HINTS ${_pdn_hints} PATH_SUFFIXES include cuda/include
            NO_CACHE ${_pdn_cudnn_only_hints})
  find_library(PYDARKNET_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 libcudnn.so.8 HINTS ${_pdn_hints}
               PATH_SUFFIXES lib lib64 lib/x64 cuda/lib64 NO_CACHE ${_pdn_cudnn_only_hints})
  if(PYDARKNET_CUDNN_INCLUDE_DIR AND PYDARKNET_CUDNN_LIBRARY)
    set(PYDARKNET_WITH_CUDNN ON)
    foreach(h cudnn_version.h cudnn.h)
      if(EXISTS "${PYDARKNET_CUDNN_INCLUDE_DIR}/${h}" AND NOT PYDARKNET_CUDNN_VERSION)
        file(STRINGS "${PYDARKNET_CUDNN_INCLUDE_DIR}/${h}" _v REGEX "define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
        string(REGEX REPLACE ".*CUDNN_MAJOR +([0-9]+).*CUDNN_MINOR +([0-9]+).*CUDNN_PATCHLEVEL +([0-9]+).*"
               "\\1.\\2.\\3" PYDARKNET_CUDNN_VERSION "${_v}")
      endif()
    endforeach()
    # At run time the loader must find libcudnn: beside us in the same site-packages (relative, so the installed
    # package can move with its environment), and where it was found at build time.
    get_filename_component(_pdn_cudnn_libdir "${PYDARKNET_CUDNN_LIBRARY}" DIRECTORY)
    if(PYDARKNET_WHEEL_SITE)
      _pdn_rpath_into_site("${_pdn_cudnn_libdir}")
    else()
      foreach(site ${_pdn_sites})
        string(FIND "${_pdn_cudnn_libdir}" "${site}/" _pos)
        if(_pos EQUAL 0)
          file(RELATIVE_PATH _rel "${site}" "${_pdn_cudnn_libdir}")
          list(APPEND PYDARKNET_RUNTIME_RPATH "$ORIGIN/../../${_rel}")
          break()
        endif()
      endforeach()
      list(APPEND PYDARKNET_RUNTIME_RPATH "${_pdn_cudnn_libdir}")
    endif()
    message(STATUS "pydarknet: cuDNN ${PYDARKNET_CUDNN_VERSION} at ${PYDARKNET_CUDNN_LIBRARY}")
  elseif(PYDARKNET_CUDNN STREQUAL "ON")
    message(FATAL_ERROR "PYDARKNET_CUDNN=ON, but cuDNN was not found (looked in: ${_pdn_hints} and the system). "
                        "Install nvidia-cudnn-cu12/-cu13 into this environment or set CUDNN_ROOT "
                        "(with PYDARKNET_CUDA=WHEELS: nvidia-cudnn-cu13, or PYDARKNET_CUDNN=OFF).")
  else()
    message(WARNING "pydarknet: cuDNN not found; CUDA build without cuDNN (slower, no FP16). Set CUDNN_ROOT to use it.")
    list(APPEND PYDARKNET_BUILD_NOTES "cuDNN not found")
  endif()
endif()

# FP16 Tensor Core kernels
if(PYDARKNET_CUDNN_HALF STREQUAL "OFF")
  list(APPEND PYDARKNET_BUILD_NOTES "FP16 off: PYDARKNET_CUDNN_HALF=OFF")
elseif(NOT PYDARKNET_WITH_CUDNN)
  if(PYDARKNET_CUDNN_HALF STREQUAL "ON")
    message(FATAL_ERROR "PYDARKNET_CUDNN_HALF=ON needs cuDNN, which is not used in this build")
  endif()
  list(APPEND PYDARKNET_BUILD_NOTES "FP16 off: needs cuDNN")
elseif(_pdn_min_arch LESS 70)
  if(PYDARKNET_CUDNN_HALF STREQUAL "ON")
    message(FATAL_ERROR "PYDARKNET_CUDNN_HALF=ON, but architecture ${_pdn_min_arch} has no Tensor Cores (needs 70+)")
  endif()
  list(APPEND PYDARKNET_BUILD_NOTES "FP16 off: architecture ${_pdn_min_arch} < 70")
else()
  set(PYDARKNET_WITH_HALF ON)
endif()
string(REPLACE ";" "; " PYDARKNET_BUILD_NOTES "${PYDARKNET_BUILD_NOTES}")
