// Claims GPUs with the with-gpu library, prints them, and releases them.
//
//   claim_and_run [NAME=VALUE ...]      e.g. claim_and_run count=2 min_memory=20G wait=true
//
// Exit status as the with-gpu command's: 75 when nothing suitable is free, 2 for a bad
// setting, 125 when with-gpu cannot work here.
#include <iostream>
#include <string>
#include <with_gpu/with_gpu.hpp>

int main(int argc, char** argv) {
    with_gpu::Request request;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto eq = arg.find('=');
        if (eq == std::string::npos) {
            std::cerr << "claim_and_run: expected NAME=VALUE, got " << arg << "\n";
            return 2;
        }
        request.set(arg.substr(0, eq), arg.substr(eq + 1));
    }
    try {
        with_gpu::Lease lease = with_gpu::acquire(request);
        for (const auto& gpu : lease.gpus()) {
            std::cout << "GPU " << gpu.index << " " << gpu.uuid << " cuda:" << gpu.cuda_id << "\n";
        }
        lease.release();
    } catch (const with_gpu::Error& e) {
        std::cerr << "claim_and_run: " << e.what() << "\n";
        if (!e.hint().empty()) {
            std::cerr << "claim_and_run: hint: " << e.hint() << "\n";
        }
        return e.exit_code();
    }
    return 0;
}
