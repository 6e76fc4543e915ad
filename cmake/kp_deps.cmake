# Dependencies: Debian packages (scripts/install_deps.sh installs them).
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()
find_package(Threads REQUIRED)
# Google Highway (Debian libhwy-dev): the CPU backend's SIMD kernels, one
# binary for every SIMD target of the architecture (dynamic dispatch).
find_package(hwy REQUIRED)
if(KP_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
find_package(benchmark QUIET)

# Vulkan: loader + headers, and shaderc for run-time GLSL -> SPIR-V.
set(KP_HAVE_VULKAN OFF)
if(KP_WITH_VULKAN)
  find_package(Vulkan QUIET)
  find_library(KP_SHADERC_LIB NAMES shaderc_combined shaderc shaderc_shared)
  find_path(KP_SHADERC_INCLUDE shaderc/shaderc.hpp)
  # Debian's shaderc (libshaderc_combined.a, preferred: the .so uses a glslang
  # ABI the packaged glslang-dev does not match) leaves glslang and SPIRV-Tools
  # out: link their static libraries after it, in dependency order (glslang's
  # CMake package needs glslang-tools installed, so find them directly).
  if(KP_SHADERC_LIB)
    foreach(lib SPIRV glslang MachineIndependent OSDependent GenericCodeGen OGLCompiler HLSL SPIRV-Tools-opt SPIRV-Tools)
      find_library(KP_SHADERC_DEP_${lib} NAMES ${lib})
      if(KP_SHADERC_DEP_${lib})
        list(APPEND KP_SHADERC_LIB ${KP_SHADERC_DEP_${lib}})
      endif()
    endforeach()
  endif()
  if(Vulkan_FOUND AND KP_SHADERC_LIB AND KP_SHADERC_INCLUDE)
    set(KP_HAVE_VULKAN ON)
  endif()
endif()
message(STATUS "kpath: Vulkan backend ${KP_HAVE_VULKAN}")

# CUDA: only headers are needed at build time; the driver and NVRTC are loaded
# at run time (dlopen), so one binary runs with or without CUDA.
set(KP_HAVE_CUDA OFF)
if(KP_WITH_CUDA)
  find_path(KP_CUDA_INCLUDE cuda.h HINTS /usr/local/cuda/include ENV CUDA_PATH PATH_SUFFIXES include)
  find_path(KP_NVRTC_INCLUDE nvrtc.h HINTS /usr/local/cuda/include ENV CUDA_PATH PATH_SUFFIXES include)
  if(KP_CUDA_INCLUDE AND KP_NVRTC_INCLUDE)
    set(KP_HAVE_CUDA ON)
  endif()
endif()
message(STATUS "kpath: CUDA backend ${KP_HAVE_CUDA}")
