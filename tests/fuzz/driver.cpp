// The seeded mutational fuzz driver (what CI runs; no special compiler needed):
//
//   with-gpu-fuzz list
//   with-gpu-fuzz run TARGET --corpus DIR [--seed N] [--iterations N] [--seconds S]
//                            [--max-length BYTES]
//   with-gpu-fuzz replay TARGET FILE...
//
// `run` starts from the corpus files, mutates them (bit flips, random and interesting bytes,
// inserts, deletes, duplicated ranges, dictionary tokens, splices of two inputs) and stops at
// whichever limit comes first. The same seed gives the same inputs. When an invariant breaks
// or the process dies of a signal, the input is written to fuzz-crash-TARGET.bin in
// $WITH_GPU_FUZZ_ARTIFACTS (default: the current directory), for `replay`.
#include "targets.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace {

using withgpu::fuzz::Target;

// What the crash handler writes out: the input being run. Set before each run; the handler
// only reads it (async-signal-safe calls only).
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): a signal handler reaches
// nothing else.
const std::string* g_current = nullptr;
char g_crash_path[4096] = {};
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

extern "C" void on_crash(int sig) {
    if (g_current != nullptr && g_crash_path[0] != '\0') {
        const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            std::size_t written = 0;
            while (written < g_current->size()) {
                const ssize_t n =
                    ::write(fd, g_current->data() + written, g_current->size() - written);
                if (n <= 0) {
                    break;
                }
                written += static_cast<std::size_t>(n);
            }
            ::close(fd);
        }
        constexpr char note[] = "fuzz: the input that failed was written to ";
        (void)!::write(STDERR_FILENO, note, sizeof note - 1);
        (void)!::write(STDERR_FILENO, g_crash_path, std::strlen(g_crash_path));
        (void)!::write(STDERR_FILENO, "\n", 1);
    }
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

void arm_crash_handler(const Target& target) {
    const char* dir = std::getenv("WITH_GPU_FUZZ_ARTIFACTS");
    const std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : ".") +
                             "/fuzz-crash-" + target.name + ".bin";
    if (path.size() < sizeof g_crash_path) {
        std::memcpy(g_crash_path, path.c_str(), path.size() + 1);
    }
    for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
        std::signal(sig, on_crash);
    }
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::string> read_corpus(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> paths;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.is_regular_file()) {
            paths.push_back(entry.path());
        }
    }
    std::sort(paths.begin(), paths.end()); // the same order everywhere: reproducible runs
    std::vector<std::string> corpus;
    corpus.reserve(paths.size());
    for (const auto& path : paths) {
        corpus.push_back(read_file(path));
    }
    if (corpus.empty()) {
        corpus.emplace_back();
    }
    return corpus;
}

class Mutator {
  public:
    Mutator(std::uint64_t seed, const Target& target, std::size_t max_length)
        : m_random(seed), m_target(target), m_max_length(max_length) {}

    std::string next(const std::vector<std::string>& corpus) {
        std::string input = corpus[below(corpus.size())];
        const std::size_t rounds = 1 + below(8);
        for (std::size_t i = 0; i < rounds; ++i) {
            mutate(input, corpus);
        }
        if (input.size() > m_max_length) {
            input.resize(m_max_length);
        }
        return input;
    }

  private:
    std::size_t below(std::size_t n) {
        return n == 0 ? 0 : static_cast<std::size_t>(m_random() % n);
    }
    char any_byte() { return static_cast<char>(m_random() & 0xFFU); }
    char interesting_byte() {
        constexpr char bytes[] = {'\0',   '\n', '\t', '\x1b', '\x7f', '\x80', '\xc2', '\xe2',
                                  '\xff', '"',  '\\', ',',    '=',    '[',    ']',    '{',
                                  '}',    '-',  '0',  '9',    '.',    ' ',    ':',    '\''};
        return bytes[below(sizeof bytes)];
    }

    void mutate(std::string& s, const std::vector<std::string>& corpus) {
        switch (below(9)) {
        case 0: // flip a bit
            if (!s.empty()) {
                char& c = s[below(s.size())];
                c = static_cast<char>(static_cast<unsigned char>(c) ^ (1U << below(8)));
            }
            break;
        case 1: // a random byte
            if (!s.empty()) {
                s[below(s.size())] = any_byte();
            }
            break;
        case 2: // an interesting byte
            if (!s.empty()) {
                s[below(s.size())] = interesting_byte();
            }
            break;
        case 3: { // insert a few random bytes
            std::string bytes(1 + below(8), '\0');
            for (char& c : bytes) {
                c = any_byte();
            }
            s.insert(below(s.size() + 1), bytes);
            break;
        }
        case 4: // delete a range
            if (!s.empty()) {
                const std::size_t at = below(s.size());
                s.erase(at, 1 + below(std::min<std::size_t>(16, s.size() - at)));
            }
            break;
        case 5: // duplicate a range
            if (!s.empty()) {
                const std::size_t at = below(s.size());
                const std::string range = s.substr(at, 1 + below(32));
                s.insert(below(s.size() + 1), range);
            }
            break;
        case 6: // a dictionary token
            if (!m_target.dictionary.empty()) {
                const auto token = m_target.dictionary[below(m_target.dictionary.size())];
                s.insert(below(s.size() + 1), token);
            }
            break;
        case 7: { // splice: our head, another input's tail
            const std::string& other = corpus[below(corpus.size())];
            s = s.substr(0, below(s.size() + 1)) + other.substr(below(other.size() + 1));
            break;
        }
        default: // truncate
            s.resize(below(s.size() + 1));
            break;
        }
    }

    std::mt19937_64 m_random;
    const Target& m_target;
    std::size_t m_max_length;
};

struct RunOptions {
    std::filesystem::path corpus;
    std::uint64_t seed = 1;
    std::uint64_t iterations = 100000;
    double seconds = 10.0;
    std::size_t max_length = 4096;
};

int usage() {
    std::fprintf(stderr,
                 "usage: with-gpu-fuzz list\n"
                 "       with-gpu-fuzz run TARGET --corpus DIR [--seed N] [--iterations N] "
                 "[--seconds S] [--max-length BYTES]\n"
                 "       with-gpu-fuzz replay TARGET FILE...\n");
    return 2;
}

int run(const Target& target, const RunOptions& options) {
    const std::vector<std::string> corpus = read_corpus(options.corpus);
    arm_crash_handler(target);
    const auto started = std::chrono::steady_clock::now();
    const auto budget = std::chrono::duration<double>(options.seconds);
    std::uint64_t done = 0;
    // The corpus itself first, unmutated.
    for (const auto& input : corpus) {
        g_current = &input;
        target.run(input);
        ++done;
    }
    Mutator mutator(options.seed, target, options.max_length);
    std::string input;
    while (done < options.iterations && std::chrono::steady_clock::now() - started < budget) {
        input = mutator.next(corpus);
        g_current = &input;
        target.run(input);
        ++done;
    }
    g_current = nullptr;
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf(
        "fuzz %s: %llu inputs in %.1fs (seed %llu, %zu corpus files), no invariant broken\n",
        target.name,
        static_cast<unsigned long long>(done),
        took,
        static_cast<unsigned long long>(options.seed),
        corpus.size());
    return 0;
}

bool parse_number(const char* text, double& out) {
    char* end = nullptr;
    errno = 0;
    out = std::strtod(text, &end);
    return errno == 0 && end != text && *end == '\0' && out >= 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.size() == 1 && args[0] == "list") {
        for (const auto& target : withgpu::fuzz::targets()) {
            std::printf("%s\n", target.name);
        }
        return 0;
    }
    if (args.size() < 2) {
        return usage();
    }
    const Target* target = withgpu::fuzz::find_target(args[1]);
    if (target == nullptr) {
        std::fprintf(stderr, "with-gpu-fuzz: no target %s (see: with-gpu-fuzz list)\n", argv[2]);
        return 2;
    }
    if (args[0] == "replay") {
        arm_crash_handler(*target);
        for (std::size_t i = 2; i < args.size(); ++i) {
            const std::string input = read_file(std::filesystem::path(args[i]));
            g_current = &input;
            target->run(input);
            std::printf("replayed %s: fine\n", argv[i + 1]);
        }
        return 0;
    }
    if (args[0] != "run") {
        return usage();
    }
    RunOptions options;
    for (std::size_t i = 2; i < args.size(); i += 2) {
        if (i + 1 >= args.size()) {
            return usage();
        }
        const char* value = argv[i + 2];
        double number = 0;
        if (args[i] == "--corpus") {
            options.corpus = value;
            continue;
        }
        if (!parse_number(value, number)) {
            return usage();
        }
        if (args[i] == "--seed") {
            options.seed = static_cast<std::uint64_t>(number);
        } else if (args[i] == "--iterations") {
            options.iterations = static_cast<std::uint64_t>(number);
        } else if (args[i] == "--seconds") {
            options.seconds = number;
        } else if (args[i] == "--max-length") {
            options.max_length = static_cast<std::size_t>(number);
        } else {
            return usage();
        }
    }
    return run(*target, options);
}
