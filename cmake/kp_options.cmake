# Compiler warnings and sanitizers, applied through the kp_warnings interface target.
add_library(kp_warnings INTERFACE)
target_compile_options(kp_warnings INTERFACE -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                       -Wnon-virtual-dtor -Wno-missing-field-initializers)
if(KP_WERROR)
  target_compile_options(kp_warnings INTERFACE -Werror)
endif()
if(KP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  # GCC's -Wmaybe-uninitialized reports false positives inside the standard
  # library when the sanitizers instrument it (GCC 12: std::regex, std::function);
  # the release build keeps the warning. (After -Wall, which turns it on.)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(kp_warnings INTERFACE -Wno-maybe-uninitialized)
  endif()
  add_link_options(-fsanitize=address,undefined)
endif()
if(KP_BUILD_FUZZ)
  # Everything gets libFuzzer's coverage instrumentation (fuzzer-no-link) and
  # ASan + UBSan; only the fuzz targets link libFuzzer's main (fuzz/CMakeLists.txt).
  # _GLIBCXX_ASSERTIONS adds bounds checks to operator[] of the standard
  # containers, which ASan misses inside a vector's capacity.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KP_BUILD_FUZZ needs clang (libFuzzer): configure with the 'asan' preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined -D_GLIBCXX_ASSERTIONS)
  add_link_options(-fsanitize=address,undefined)
endif()
