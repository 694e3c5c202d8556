#include "machine_file.hpp"

#include "os/errno_text.hpp"
#include "os/fd.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace withgpu::sim {
namespace {

FileIdentity identity_of(const struct stat& st) {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
}

const char* machine_path_from_environment() {
    const char* path = std::getenv(machine_env);
    return path == nullptr || *path == '\0' ? nullptr : path;
}

} // namespace

// The identity comes from the descriptor that was read, so it always matches the text.
LoadedFile load_machine_file(const std::string& path) {
    LoadedFile loaded;
    const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        loaded.error = "cannot open: " + errno_text(errno);
        return loaded;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        loaded.error = "cannot stat: " + errno_text(errno);
        return loaded;
    }
    std::string text;
    std::array<char, 16384> buffer{};
    for (;;) {
        const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            loaded.error = "cannot read: " + errno_text(errno);
            return loaded;
        }
        if (got == 0) {
            break;
        }
        text.append(buffer.data(), static_cast<std::size_t>(got));
    }
    loaded.identity = identity_of(st);
    auto parsed = parse_machine(text);
    loaded.machine = std::move(parsed.machine);
    loaded.error = std::move(parsed.error);
    return loaded;
}

MachineFile::Attempt MachineFile::load() {
    const char* path = machine_path_from_environment();
    if (path == nullptr) {
        return {std::nullopt, true};
    }
    auto loaded = load_machine_file(path);
    if (!loaded.machine) {
        report(path, loaded.error);
        return {};
    }
    m_loaded_path = path;
    m_loaded_identity = loaded.identity;
    return {std::move(loaded.machine), false};
}

void MachineFile::commit(Machine machine) {
    m_path = m_loaded_path;
    m_identity = m_loaded_identity;
    m_machine = std::move(machine);
    ++m_generation;
}

void MachineFile::clear() {
    m_machine.reset();
    m_identity.reset();
    m_path.clear();
}

void MachineFile::refresh() {
    const char* path = machine_path_from_environment();
    if (path == nullptr) {
        return;
    }
    struct stat st {};
    if (::stat(path, &st) != 0) {
        return;
    }
    if (m_identity && *m_identity == identity_of(st) && m_path == path) {
        return;
    }
    auto loaded = load_machine_file(path);
    if (!loaded.identity) {
        return; // vanished between stat and open; try again next call
    }
    if (!loaded.machine) {
        report(path, loaded.error);
    }
    m_path = path;
    m_identity = loaded.identity;
    m_machine = std::move(loaded.machine);
    ++m_generation;
}

void MachineFile::report(const std::string& path, const std::string& error) const {
    std::fprintf(stderr, "%s: %s: %s\n", m_tag, path.c_str(), error.c_str());
}

} // namespace withgpu::sim
