# Compiler settings shared by every target of the project, as one interface
# target so that third-party code is never compiled with our warning flags.
add_library(withgpu_settings INTERFACE)
target_compile_options(withgpu_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wconversion -Wsign-conversion
  -Wold-style-cast -Wcast-qual -Wformat=2 -Wimplicit-fallthrough)
# One section per function and object, so that the command's link can drop what it never
# uses (src/CMakeLists.txt, --gc-sections).
target_compile_options(withgpu_settings INTERFACE -ffunction-sections -fdata-sections)
# Our code never reads errno after a math function nor tests floating-point exception flags;
# saying so lets the compiler inline round, lround and llround, the only calls the command
# made into libm, which then need not be loaded at all (src/CMakeLists.txt, lld).
target_compile_options(withgpu_settings INTERFACE -fno-math-errno -fno-trapping-math)
if(WITH_GPU_WERROR)
  target_compile_options(withgpu_settings INTERFACE -Werror)
endif()
if(CMAKE_BUILD_TYPE STREQUAL "Debug")
  target_compile_definitions(withgpu_settings INTERFACE _GLIBCXX_ASSERTIONS)
endif()

if(WITH_GPU_SANITIZE)
  # Applied globally so that the simulator library, the tests and the
  # binary agree on the runtime.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
