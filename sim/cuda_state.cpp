#include "cuda_state.hpp"

#include "os/errno_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::sim {
namespace {

using nlohmann::json;

constexpr unsigned long long mib = 1024ULL * 1024ULL;

bool parse_hex_field(std::string_view text, std::size_t max_digits, unsigned int& out) {
    if (text.empty() || text.size() > max_digits) {
        return false;
    }
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out, 16);
    return ec == std::errc{} && ptr == end;
}

// "/proc/<pid>/stat" fields after the command name: the state (3rd field) and the start
// time (22nd). nullopt when the pid has no readable entry.
struct ProcStat {
    char state = '?';
    unsigned long long start_time = 0;
};

std::optional<ProcStat> read_proc_stat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!in || !std::getline(in, text)) {
        return std::nullopt;
    }
    const auto close = text.rfind(')'); // the command name may hold spaces and parentheses
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 1));
    ProcStat stat;
    std::string skipped;
    fields >> stat.state;
    for (int field = 4; field < 22 && fields >> skipped; ++field) {
    }
    if (!(fields >> stat.start_time)) {
        return std::nullopt;
    }
    return stat;
}

// The real driver frees a process's memory when it exits, before it is reaped, so a zombie
// holds nothing.
bool alive(pid_t pid, unsigned long long start_time) {
    if (const auto stat = read_proc_stat(pid)) {
        return stat->state != 'Z' && stat->state != 'X' &&
               (start_time == 0 || stat->start_time == start_time);
    }
    return ::kill(pid, 0) == 0 || errno != ESRCH; // EPERM: another user's, alive
}

// "cuda-<pid>.json" -> pid; 0 for any other name (temporary files included).
pid_t pid_of_file(std::string_view name) {
    constexpr std::string_view prefix = "cuda-";
    constexpr std::string_view suffix = ".json";
    if (!name.starts_with(prefix) || !name.ends_with(suffix)) {
        return 0;
    }
    const auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    pid_t pid = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    return ec == std::errc{} && ptr == digits.data() + digits.size() && pid > 0 ? pid : 0;
}

std::string file_of(const std::string& dir, pid_t pid) {
    return dir + "/cuda-" + std::to_string(pid) + ".json";
}

// Adds one file's entries to `usage` if its process is alive; throws on a malformed file.
void add_file(const std::string& path, pid_t pid, CudaUsage& usage) {
    std::ifstream in(path);
    if (!in) {
        return; // removed since the directory was listed
    }
    const json root = json::parse(in);
    if (root.at("pid").get<pid_t>() != pid) {
        throw std::runtime_error("the pid inside is not the one in the name");
    }
    if (!alive(pid, root.at("start_time").get<unsigned long long>())) {
        return;
    }
    for (const auto& [key, bytes] : root.at("memory_bytes").items()) {
        const auto bus = parse_bus_id(key);
        if (!bus) {
            throw std::runtime_error("\"" + key + "\" is not a PCI bus id");
        }
        usage[bus->address].push_back(
            {static_cast<unsigned int>(pid), bytes.get<unsigned long long>()});
    }
}

struct DirCloser {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

std::string make_dir(const std::string& dir) {
    // World-writable and sticky like /tmp, so that simulated processes of several users can
    // share one machine; the sticky bit keeps each one's files its own.
    if (::mkdir(dir.c_str(), 0700) == 0) {
        return ::chmod(dir.c_str(), 01777) == 0 ? "" : dir + ": chmod: " + errno_text(errno);
    }
    return errno == EEXIST ? "" : dir + ": cannot create: " + errno_text(errno);
}

std::string write_file(const std::string& path, const std::string& text) {
    const Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        return path + ": cannot create: " + errno_text(errno);
    }
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t wrote = ::write(fd.get(), text.data() + done, text.size() - done);
        if (wrote < 0 && errno == EINTR) {
            continue;
        }
        if (wrote < 0) {
            return path + ": cannot write: " + errno_text(errno);
        }
        done += static_cast<std::size_t>(wrote);
    }
    return "";
}

} // namespace

std::string state_dir(const std::string& machine_path) {
    const char* explicit_dir = std::getenv(state_env);
    if (explicit_dir != nullptr && *explicit_dir != '\0') {
        return explicit_dir;
    }
    return machine_path + ".d";
}

std::optional<BusId> parse_bus_id(std::string_view text) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
        const auto colon = text.find(':', start);
        parts.push_back(
            text.substr(start, colon == std::string_view::npos ? colon : colon - start));
        if (colon == std::string_view::npos) {
            break;
        }
        start = colon + 1;
    }
    if (parts.size() != 2 && parts.size() != 3) {
        return std::nullopt;
    }
    BusId id;
    const bool domain_ok = parts.size() == 2 || parse_hex_field(parts[0], 8, id.address.domain);
    const auto bus_text = parts[parts.size() - 2];
    auto device_text = parts.back();
    const auto dot = device_text.find('.');
    bool ok = domain_ok && parse_hex_field(bus_text, 2, id.address.bus);
    if (dot != std::string_view::npos) {
        ok = ok && parse_hex_field(device_text.substr(dot + 1), 1, id.function);
        device_text = device_text.substr(0, dot);
    } else {
        ok = ok && parts.size() == 3; // "bus:device" alone is not a form the driver takes
    }
    ok = ok && parse_hex_field(device_text, 2, id.address.device);
    if (!ok || id.address.device > 0x1FU || id.function > 7U) {
        return std::nullopt;
    }
    return id;
}

std::string bus_id_text(const PciAddress& address) {
    std::array<char, 32> text{};
    std::snprintf(text.data(),
                  text.size(),
                  "%08X:%02X:%02X.0",
                  address.domain,
                  address.bus & 0xFFU,
                  address.device & 0x1FU);
    return text.data();
}

unsigned long long start_time_of(pid_t pid) {
    const auto stat = read_proc_stat(pid);
    return stat ? stat->start_time : 0;
}

CudaUsage read_cuda_usage(const std::string& dir, pid_t skip_pid, const char* tag) {
    CudaUsage usage;
    const std::unique_ptr<DIR, DirCloser> listing(::opendir(dir.c_str()));
    if (!listing) {
        return usage; // nothing has been allocated yet
    }
    while (const dirent* entry = ::readdir(listing.get())) {
        const pid_t pid = pid_of_file(entry->d_name);
        if (pid == 0 || pid == skip_pid) {
            continue;
        }
        const auto path = dir + "/" + entry->d_name;
        try {
            add_file(path, pid, usage);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s: %s\n", tag, path.c_str(), e.what());
        }
    }
    return usage;
}

std::string write_cuda_usage(const std::string& dir,
                             pid_t pid,
                             unsigned long long start_time,
                             const std::map<PciAddress, unsigned long long>& held) {
    const auto path = file_of(dir, pid);
    if (held.empty()) {
        return ::unlink(path.c_str()) == 0 || errno == ENOENT
                   ? ""
                   : path + ": cannot remove: " + errno_text(errno);
    }
    json memory = json::object();
    for (const auto& [address, bytes] : held) {
        memory[bus_id_text(address)] = bytes;
    }
    const json root{{"pid", pid}, {"start_time", start_time}, {"memory_bytes", memory}};
    if (auto error = make_dir(dir); !error.empty()) {
        return error;
    }
    const auto staging = path + ".tmp";
    if (auto error = write_file(staging, root.dump() + "\n"); !error.empty()) {
        ::unlink(staging.c_str());
        return error;
    }
    if (::rename(staging.c_str(), path.c_str()) != 0) {
        const int error = errno;
        ::unlink(staging.c_str());
        return path + ": cannot replace: " + errno_text(error);
    }
    return "";
}

SimGpu with_cuda_usage(SimGpu gpu, const CudaUsage& usage) {
    const auto found = usage.find(address_of(gpu));
    if (found == usage.end()) {
        return gpu;
    }
    for (const auto& cuda : found->second) {
        const unsigned long long used_mib = (cuda.bytes + mib - 1) / mib;
        const auto same = std::find_if(gpu.processes.begin(),
                                       gpu.processes.end(),
                                       [&](const SimProcess& p) { return p.pid == cuda.pid; });
        if (same == gpu.processes.end()) {
            gpu.processes.push_back({cuda.pid, used_mib, ProcessType::compute});
            continue;
        }
        same->used_memory_mib = same->used_memory_mib.value_or(0) + used_mib;
        if (same->type == ProcessType::graphics) {
            same->type = ProcessType::both;
        }
    }
    return gpu;
}

StateLock::StateLock(const std::string& dir) {
    m_error = make_dir(dir);
    if (!m_error.empty()) {
        return;
    }
    const auto path = dir + "/lock";
    // Read-only is enough for flock, and lets every user open a file one of them created.
    m_fd = Fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!m_fd) {
        m_error = path + ": cannot open: " + errno_text(errno);
        return;
    }
    while (::flock(m_fd.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            m_error = path + ": cannot lock: " + errno_text(errno);
            m_fd.reset();
            return;
        }
    }
}

} // namespace withgpu::sim
