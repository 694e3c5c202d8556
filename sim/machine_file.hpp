// The machine file named by $WITH_GPU_SIM_MACHINE, loaded and kept up to date the same way
// by both simulators (docs/simulator.md, "Re-reading the machine file").
#pragma once

#include "machine.hpp"

#include <optional>
#include <string>
#include <sys/types.h>

namespace withgpu::sim {

inline constexpr const char* machine_env = "WITH_GPU_SIM_MACHINE";

// Enough to notice an atomic rename() as well as an in-place rewrite.
struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    time_t mtime_sec = 0;
    long mtime_nsec = 0;
    bool operator==(const FileIdentity&) const = default;
};

struct LoadedFile {
    std::optional<FileIdentity> identity; // nullopt: the file could not be opened or read
    std::optional<Machine> machine;       // nullopt: see error
    std::string error;
};

// Reads and parses one machine file. Never throws for a bad file.
[[nodiscard]] LoadedFile load_machine_file(const std::string& path);

// One library's view of the machine: the file it was loaded from and what it said.
class MachineFile {
  public:
    // `tag` starts the library's messages on stderr ("nvml-sim", "cuda-sim").
    explicit MachineFile(const char* tag) : m_tag(tag) {}

    // Loads $WITH_GPU_SIM_MACHINE afresh. nullopt with `unset` when the variable is unset or
    // empty; nullopt otherwise when the file is unreadable or invalid (reported on stderr).
    // Nothing changes until commit().
    struct Attempt {
        std::optional<Machine> machine;
        bool unset = false;
    };
    [[nodiscard]] Attempt load();
    // Makes the machine of the last successful load() the current one.
    void commit(Machine machine);
    void clear();

    // Reloads the machine when the file named by the environment is another file or has
    // changed. A missing file or unset variable keeps the last machine: the driver stays
    // loaded. A malformed file is reported once per version and leaves no machine until it
    // is fixed.
    void refresh();

    // nullptr: nothing loaded, or the current file is malformed.
    [[nodiscard]] const Machine* machine() const { return m_machine ? &*m_machine : nullptr; }
    // The path the current machine came from ("" when none).
    [[nodiscard]] const std::string& path() const { return m_path; }
    // Changes whenever another version of the file is taken.
    [[nodiscard]] unsigned long generation() const { return m_generation; }

  private:
    void report(const std::string& path, const std::string& error) const;

    const char* m_tag;
    std::string m_path;
    std::optional<FileIdentity> m_identity;
    std::optional<Machine> m_machine;
    unsigned long m_generation = 0;
    // Of the last load(), applied by commit().
    std::string m_loaded_path;
    std::optional<FileIdentity> m_loaded_identity;
};

} // namespace withgpu::sim
