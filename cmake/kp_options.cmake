# Compiler warnings and sanitizers, applied through the kp_warnings interface target.
add_library(kp_warnings INTERFACE)
target_compile_options(kp_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow=local
                       -Wnon-virtual-dtor -Wno-missing-field-initializers)
if(KP_WERROR)
  target_compile_options(kp_warnings INTERFACE -Werror)
endif()
if(KP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
