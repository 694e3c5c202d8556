// How much time does with-gpu add to starting a command?
//
//   startup_overhead WITH_GPU SIM_DIR MACHINE_JSON [RUNS]
//
// Runs `true` and `with-gpu -- true` alternately RUNS times each (default 200) on the
// simulated machine, each with-gpu run choosing, claiming and releasing a GPU in a fresh lock
// directory, and prints the median and 90th percentile wall time of both, the median
// overhead and the ratio. Alternating the two keeps drift in machine load out of the ratio.
// `with-gpu --status` is timed too.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ; // NOLINT: POSIX

namespace {

using Clock = std::chrono::steady_clock;

double run_once(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str())); // NOLINT: posix_spawn's signature
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) {
        envp.push_back(const_cast<char*>(e.c_str())); // NOLINT
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const auto start = Clock::now();
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        std::perror("posix_spawn");
        std::exit(1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const auto elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "%s failed (status %d)\n", argv[0].c_str(), status);
        std::exit(1);
    }
    return elapsed;
}

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    const auto index =
        static_cast<std::size_t>(std::lround(p * static_cast<double>(values.size() - 1)));
    return values[index];
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: startup_overhead WITH_GPU SIM_DIR MACHINE_JSON [RUNS]\n");
        return 2;
    }
    const std::string with_gpu = argv[1];
    const int runs = argc > 4 ? std::atoi(argv[4]) : 200;
    char lock_template[] = "/tmp/with-gpu-bench-XXXXXX";
    if (mkdtemp(lock_template) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    const std::string lock_dir = std::string(lock_template) + "/locks";

    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        env.emplace_back(*e);
    }
    env.push_back(std::string("LD_LIBRARY_PATH=") + argv[2]);
    env.push_back(std::string("WITH_GPU_SIM_MACHINE=") + argv[3]);
    env.push_back("WITH_GPU_LOCK_DIR=" + lock_dir);

    const std::vector<std::string> bare{"/bin/true"};
    const std::vector<std::string> wrapped{with_gpu, "--min-memory", "0", "--", "/bin/true"};
    const std::vector<std::string> status{with_gpu, "--status"};

    for (int i = 0; i < 10; ++i) { // warm the page cache
        run_once(bare, env);
        run_once(wrapped, env);
    }
    std::vector<double> bare_ms;
    std::vector<double> wrapped_ms;
    std::vector<double> status_ms;
    bare_ms.reserve(static_cast<std::size_t>(runs));
    wrapped_ms.reserve(static_cast<std::size_t>(runs));
    for (int i = 0; i < runs; ++i) {
        bare_ms.push_back(run_once(bare, env));
        wrapped_ms.push_back(run_once(wrapped, env));
    }
    status_ms.reserve(static_cast<std::size_t>(runs / 4) + 1);
    for (int i = 0; i < runs / 4 + 1; ++i) {
        status_ms.push_back(run_once(status, env));
    }

    const double bare_median = percentile(bare_ms, 0.5);
    const double wrapped_median = percentile(wrapped_ms, 0.5);
    std::printf("runs: %d each, machine: %s\n", runs, argv[3]);
    std::printf("true                 median %7.2f ms   p90 %7.2f ms\n",
                bare_median,
                percentile(bare_ms, 0.9));
    std::printf("with-gpu -- true     median %7.2f ms   p90 %7.2f ms\n",
                wrapped_median,
                percentile(wrapped_ms, 0.9));
    std::printf("with-gpu --status    median %7.2f ms   p90 %7.2f ms\n",
                percentile(status_ms, 0.5),
                percentile(status_ms, 0.9));
    std::printf("overhead (median)    %7.2f ms   ratio %.1fx\n",
                wrapped_median - bare_median,
                wrapped_median / bare_median);
    return 0;
}
