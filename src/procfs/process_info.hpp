// What /proc says about a process: who runs it and what it runs.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace withgpu::procfs {

struct ProcessDetails {
    std::optional<std::string> user;    // owner's name (or numeric uid if it has no name)
    std::optional<std::string> command; // argv joined by spaces; "[comm]" for kernel threads
};

// Reads /proc/<pid>/status (real uid) and /proc/<pid>/cmdline. Fields are nullopt where
// the process does not exist or is not visible (e.g. another PID namespace, hidepid).
[[nodiscard]] ProcessDetails read_process_details(pid_t pid);

// The state letter of /proc/<pid>/stat ('R', 'S', 'T', 't', ...), or nullopt where the
// process does not exist or is not visible.
[[nodiscard]] std::optional<char> process_state(pid_t pid);

// The parent of a process, from /proc/<pid>/stat; nullopt where it is gone or not visible.
[[nodiscard]] std::optional<pid_t> parent_pid(pid_t pid);

// Whether `pid` is `ancestor` or one of its descendants (by parent links, as they are now).
[[nodiscard]] bool descends_from(pid_t pid, pid_t ancestor);

// The name of a user id via getpwuid_r, or the number as text if it has no entry.
[[nodiscard]] std::string user_name(uid_t uid);

// A file's identity, as fstat reports it.
struct FileId {
    dev_t device = 0;
    ino_t inode = 0;

    friend bool operator==(const FileId&, const FileId&) = default;
};

// The files this process has open (every descriptor in /proc/self/fd), including those it
// inherited. Empty when /proc is not mounted.
[[nodiscard]] std::vector<FileId> open_files();

} // namespace withgpu::procfs
