# CMake toolchain file: cross-compile libpydarknet for Windows x86-64 with MinGW-w64 (Debian/Ubuntu packages
# gcc-mingw-w64-x86-64-posix and g++-mingw-w64-x86-64-posix: the "posix" thread model, which darknet's pthreads and
# OpenMP need).  Used by tools/windows_check.sh; run the result under Wine or copy it to Windows.
#
#   cmake -S . -B build/mingw -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#
# Another MinGW-w64 prefix: -DPYDARKNET_MINGW_PREFIX=x86_64-w64-mingw32 (compilers <prefix>-gcc and <prefix>-g++,
# tried with the -posix suffix first).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(PYDARKNET_MINGW_PREFIX "x86_64-w64-mingw32" CACHE STRING "MinGW-w64 tool prefix")
find_program(PYDARKNET_MINGW_CC NAMES ${PYDARKNET_MINGW_PREFIX}-gcc-posix ${PYDARKNET_MINGW_PREFIX}-gcc REQUIRED)
find_program(PYDARKNET_MINGW_CXX NAMES ${PYDARKNET_MINGW_PREFIX}-g++-posix ${PYDARKNET_MINGW_PREFIX}-g++ REQUIRED)
find_program(PYDARKNET_MINGW_RC NAMES ${PYDARKNET_MINGW_PREFIX}-windres)
set(CMAKE_C_COMPILER "${PYDARKNET_MINGW_CC}")
set(CMAKE_CXX_COMPILER "${PYDARKNET_MINGW_CXX}")
if(PYDARKNET_MINGW_RC)
  set(CMAKE_RC_COMPILER "${PYDARKNET_MINGW_RC}")
endif()

# headers and libraries from the MinGW sysroot only; programs (git, python) from the host
set(CMAKE_FIND_ROOT_PATH "/usr/${PYDARKNET_MINGW_PREFIX}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Wine runs the test programs the build makes (try_run, the check in tools/windows_check.sh)
find_program(PYDARKNET_WINE NAMES wine64 wine)
if(PYDARKNET_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${PYDARKNET_WINE}")
endif()
