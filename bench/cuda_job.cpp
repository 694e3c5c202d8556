// A stand-in GPU job for the real-driver check (scripts/real-gpu-check.sh): waits, then takes
// memory on one GPU through the CUDA driver, as a training script would, holds it, and ends.
//
//   cuda_job PCI_BUS_ID WAIT_SECONDS HOLD_SECONDS [MIB]
//
// Prints one line per step with a CLOCK_MONOTONIC time in ms, so that the check can tell when
// the job's memory appeared and when with-gpu's hold let go.
#include "cuda/driver.hpp"
#include "cuda/hold.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

long long now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5) {
        std::fprintf(stderr, "usage: cuda_job PCI_BUS_ID WAIT_SECONDS HOLD_SECONDS [MIB]\n");
        return 2;
    }
    const std::string bus_id = argv[1];
    const auto wait = std::chrono::seconds(std::strtol(argv[2], nullptr, 10));
    const auto hold = std::chrono::seconds(std::strtol(argv[3], nullptr, 10));
    const unsigned long long mib = argc == 5 ? std::strtoull(argv[4], nullptr, 10) : 1024;
    std::printf("cuda_job %lld: started, pid %d\n", now_ms(), static_cast<int>(::getpid()));
    std::fflush(stdout);
    std::this_thread::sleep_for(wait);
    auto driver = withgpu::cuda::Driver::open();
    if (!driver) {
        std::fprintf(stderr, "cuda_job: %s\n", driver.error().message.c_str());
        return 1;
    }
    auto memory = withgpu::cuda::Hold::make(*driver, bus_id, withgpu::cuda::Bytes{mib << 20U});
    if (!memory) {
        std::fprintf(stderr, "cuda_job: %s\n", memory.error().message.c_str());
        return 1;
    }
    std::printf("cuda_job %lld: holding %llu MiB on %s\n", now_ms(), mib, bus_id.c_str());
    std::fflush(stdout);
    std::this_thread::sleep_for(hold);
    std::printf("cuda_job %lld: done\n", now_ms());
    return 0;
}
