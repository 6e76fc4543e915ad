# Compiler cache: every compile goes through ccache when it is installed
# (scripts/install_deps.sh installs it), with the cache in build/ccache beside
# the preset build folders, so that a rebuild in a kept build folder (any
# preset, any clone path's build/) only recompiles what changed. Off with
# -DKP_CCACHE=OFF; a launcher given on the command line is left alone.
option(KP_CCACHE "Compile through ccache when it is installed" ON)
set(KP_CCACHE_DIR "${PROJECT_SOURCE_DIR}/build/ccache" CACHE PATH "ccache's cache directory")
if(KP_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER AND NOT CMAKE_C_COMPILER_LAUNCHER)
  find_program(KP_CCACHE_PROGRAM ccache)
  if(KP_CCACHE_PROGRAM)
    # Settings through `cmake -E env`: ccache 4.7 (Debian 12) takes none on its
    # command line. Depend mode hashes the headers the compiler lists (-MD, which
    # Ninja asks for) instead of running the preprocessor first, so a miss (every
    # compile of a fresh clone) costs little more than the compile itself.
    set(launcher ${CMAKE_COMMAND} -E env CCACHE_DIR=${KP_CCACHE_DIR} CCACHE_DEPEND=1 ${KP_CCACHE_PROGRAM})
    set(CMAKE_C_COMPILER_LAUNCHER ${launcher})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${launcher})
    message(STATUS "kpath: ccache ${KP_CCACHE_PROGRAM}, cache in ${KP_CCACHE_DIR}")
  endif()
endif()
