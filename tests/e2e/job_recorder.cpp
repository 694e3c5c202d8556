// A stand-in job for the concurrency tests: records which GPUs it was given and
// when it ran, so that a checker can prove no two jobs ever shared a GPU.
//   job_recorder LOG_FILE HOLD_MS [LABEL]
// Appends one line "<WITH_GPU_UUIDS> <start_ns> <end_ns> <pid> <LABEL>" (CLOCK_MONOTONIC)
// with a single O_APPEND write, after holding the GPUs for HOLD_MS milliseconds.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace {

long long monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: job_recorder LOG_FILE HOLD_MS [LABEL]\n");
        return 2;
    }
    const long long start = monotonic_ns();
    const char* uuids = std::getenv("WITH_GPU_UUIDS");
    const long hold_ms = std::strtol(argv[2], nullptr, 10);
    timespec hold{hold_ms / 1000, (hold_ms % 1000) * 1000000L};
    while (nanosleep(&hold, &hold) != 0 && errno == EINTR) {
    }
    const long long end = monotonic_ns();
    const std::string line = std::string(uuids != nullptr && *uuids != '\0' ? uuids : "-") + " " +
                             std::to_string(start) + " " + std::to_string(end) + " " +
                             std::to_string(getpid()) + " " + (argc == 4 ? argv[3] : "-") + "\n";
    const int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        std::perror("job_recorder");
        return 1;
    }
    close(fd);
    return 0;
}
