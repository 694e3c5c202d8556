// with-gpu-test-build: with-gpu as the end-to-end tests run it when they need a system
// configuration file. It is the same program, except that WITH_GPU_TEST_SYSTEM_CONFIG names
// the system file. This hook exists only in this test-only executable, which is never
// installed: the with-gpu that users run reads /etc/with-gpu/config.toml and nothing else.
#include "app/main.hpp"

#include <cstdlib>

int main(int argc, char** argv) {
    withgpu::core::Installation installation;
    if (const char* path = std::getenv("WITH_GPU_TEST_SYSTEM_CONFIG"); path && *path) {
        installation.system_config = path;
    }
    return withgpu::app::main(argc, argv, installation);
}
