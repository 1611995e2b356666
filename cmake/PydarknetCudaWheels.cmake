# PYDARKNET_CUDA=WHEELS: the CUDA toolkit and cuDNN come from the registry's nvidia-* wheels (see docs/gpu.md).
#
# CUDA 13's wheels (nvidia-cuda-nvcc, -nvvm, -crt, -cccl, -runtime, nvidia-cublas, nvidia-curand) unpack into one
# merged folder, <site-packages>/nvidia/cu13/{bin,include,lib,nvvm}; cuDNN (nvidia-cudnn-cu13) into nvidia/cudnn.
# (CUDA 12's nvidia-cuda-nvcc-cu12 ships ptxas and libnvvm but no nvcc, so no CUDA 12 build can come from wheels.)
# That folder is almost a toolkit, but not one CMake or nvcc can use as it is: nvcc.profile looks for libraries in
# lib64, and the wheels ship only the versioned libX.so.N that the loader wants, not the libX.so the linker looks
# for.  So we lay out a toolkit of symbolic links in the build folder (nvcc takes its root from the folder it was
# started from, without resolving links) and point CMake's CUDA language and FindCUDAToolkit at it.
#
# Out: CMAKE_CUDA_COMPILER, CUDAToolkit_ROOT (cache), PYDARKNET_WHEEL_SITE (the site-packages holding nvidia/),
#      PYDARKNET_WHEEL_CUDA_DIR (nvidia/cuNN), PYDARKNET_WHEEL_CUDNN_DIR (nvidia/cudnn, or empty),
#      PYDARKNET_WHEEL_ISOLATED (ON when that site-packages is pip's temporary build environment)

# Every nvidia/ folder the building Python sees: sys.path (pip's isolated build environment is only there),
# site-packages, and the prefixes of a virtual environment; printed as "site|site/nvidia/<name>".
function(_pdn_wheel_nvidia_dirs out)
  find_package(Python COMPONENTS Interpreter QUIET)
  if(NOT Python_EXECUTABLE)
    set(${out} "" PARENT_SCOPE)
    return()
  endif()
  execute_process(COMMAND "${Python_EXECUTABLE}" -c [=[
import glob, os, site, sys, sysconfig
roots = list(sys.path)
try:
    roots += site.getsitepackages() + [site.getusersitepackages()]
except AttributeError:
    pass
for base in [os.environ.get("VIRTUAL_ENV", ""), sys.prefix]:
    if base:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
        roots += [paths["purelib"], paths["platlib"]]
for root in dict.fromkeys(os.path.abspath(r) for r in roots if r):
    for d in sorted(glob.glob(os.path.join(root, "nvidia", "*"))):
        if os.path.isdir(d):
            print(root + "|" + d)
]=]
    OUTPUT_VARIABLE found ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REPLACE "\n" ";" found "${found}")
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

function(pydarknet_cuda_from_wheels)
  if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    message(FATAL_ERROR "PYDARKNET_CUDA=WHEELS is for Linux (the nvidia-* wheels' toolkit layout); on "
                        "${CMAKE_SYSTEM_NAME} install the CUDA toolkit and use PYDARKNET_CUDA=ON")
  endif()
  _pdn_wheel_nvidia_dirs(entries)
  set(cuda_dir "")
  set(cudnn_dir "")
  set(site "")
  # the newest nvidia/cuNN that has nvcc; cuDNN from the same site-packages when it has one there
  set(best 0)
  foreach(entry ${entries})
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 root)
    list(GET parts 1 dir)
    get_filename_component(name "${dir}" NAME)
    if(name MATCHES "^cu([0-9]+)$" AND EXISTS "${dir}/bin/nvcc" AND CMAKE_MATCH_1 GREATER best)
      set(best ${CMAKE_MATCH_1})
      set(cuda_dir "${dir}")
      set(site "${root}")
    endif()
  endforeach()
  foreach(entry ${entries})
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 root)
    list(GET parts 1 dir)
    if(dir MATCHES "/nvidia/cudnn$" AND EXISTS "${dir}/include/cudnn.h" AND (NOT cudnn_dir OR root STREQUAL site))
      set(cudnn_dir "${dir}")
    endif()
  endforeach()
  set(install_hint "pip install \"cuda-toolkit[nvcc,cccl,cudart,cublas,curand]==13.0.*\" nvidia-cudnn-cu13 (or let "
                   "PYDARKNET_CUDA=wheels pip install . install them into its build environment)")
  if(NOT cuda_dir)
    message(FATAL_ERROR "PYDARKNET_CUDA=WHEELS, but no nvidia/cuNN/bin/nvcc (the nvidia-cuda-nvcc wheel) is in any "
                        "site-packages of ${Python_EXECUTABLE}: ${install_hint}")
  endif()
  # what nvcc and darknet's sources need; each names the wheel that brings it
  set(missing "")
  foreach(need "bin/ptxas|nvidia-cuda-nvcc" "nvvm/bin/cicc|nvidia-nvvm" "include/crt/host_config.h|nvidia-cuda-crt"
               "include/cccl/nv/target|nvidia-cuda-cccl" "include/cuda_runtime.h|nvidia-cuda-runtime"
               "include/cublas_v2.h|nvidia-cublas" "include/curand.h|nvidia-curand")
    string(REPLACE "|" ";" need "${need}")
    list(GET need 0 file)
    list(GET need 1 wheel)
    if(NOT EXISTS "${cuda_dir}/${file}")
      list(APPEND missing "${wheel} (${file})")
    endif()
  endforeach()
  foreach(lib cudart cublas cublasLt curand)
    file(GLOB found "${cuda_dir}/lib/lib${lib}.so.[0-9]*")
    if(NOT found)
      list(APPEND missing "lib${lib}.so")
    endif()
  endforeach()
  if(missing)
    string(REPLACE ";" ", " missing "${missing}")
    message(FATAL_ERROR "PYDARKNET_CUDA=WHEELS: ${cuda_dir} lacks ${missing}: ${install_hint}")
  endif()

  # the toolkit of links: bin/* and nvvm as they are, include, and lib64 with the linker's unversioned names
  set(root "${CMAKE_BINARY_DIR}/cuda-wheels-toolkit")
  file(REMOVE_RECURSE "${root}")
  file(MAKE_DIRECTORY "${root}/bin" "${root}/lib64")
  file(GLOB bin_entries "${cuda_dir}/bin/*")
  foreach(f ${bin_entries})
    get_filename_component(n "${f}" NAME)
    file(CREATE_LINK "${f}" "${root}/bin/${n}" SYMBOLIC)
  endforeach()
  file(CREATE_LINK "${cuda_dir}/nvvm" "${root}/nvvm" SYMBOLIC)
  file(CREATE_LINK "${cuda_dir}/include" "${root}/include" SYMBOLIC)
  file(GLOB lib_entries "${cuda_dir}/lib/*")
  foreach(f ${lib_entries})
    get_filename_component(n "${f}" NAME)
    file(CREATE_LINK "${f}" "${root}/lib64/${n}" SYMBOLIC)
    if(n MATCHES "^(lib[A-Za-z0-9_]+)\\.so\\.[0-9]+$")
      set(dev_name "${CMAKE_MATCH_1}.so")
      if(NOT EXISTS "${root}/lib64/${dev_name}")
        file(CREATE_LINK "${f}" "${root}/lib64/${dev_name}" SYMBOLIC)
      endif()
    endif()
  endforeach()

  set(CMAKE_CUDA_COMPILER "${root}/bin/nvcc" CACHE FILEPATH "nvcc of the nvidia-cuda-nvcc wheel" FORCE)
  set(CUDAToolkit_ROOT "${root}" CACHE PATH "CUDA toolkit assembled from the nvidia-* wheels" FORCE)
  set(PYDARKNET_WHEEL_SITE "${site}" PARENT_SCOPE)
  set(PYDARKNET_WHEEL_CUDA_DIR "${cuda_dir}" PARENT_SCOPE)
  set(PYDARKNET_WHEEL_CUDNN_DIR "${cudnn_dir}" PARENT_SCOPE)
  # pip, build and uv build in temporary environments, deleted after the build: no absolute path into one may end
  # up in the library
  if(site MATCHES "/(pip-build-env-|build-env-|builds-v[0-9]+/)")
    set(PYDARKNET_WHEEL_ISOLATED ON PARENT_SCOPE)
  else()
    set(PYDARKNET_WHEEL_ISOLATED OFF PARENT_SCOPE)
  endif()
  message(STATUS "pydarknet: CUDA toolkit from the nvidia-* wheels in ${site} (${cuda_dir}); cuDNN: "
                 "${cudnn_dir}")
endfunction()
