// with-gpu as a library: claim GPUs from inside a program with the same race-free claims,
// the same first-come-first-served queue and the same thresholds as the `with-gpu` command.
// A claim made here and one made by a `with-gpu` command never share a GPU.
//
//     with_gpu::Lease lease = with_gpu::acquire({{"count", 2}, {"min_memory", "20G"}});
//     run_on(lease.cuda_ids());       // the GPUs as CUDA numbers them in this process
//     lease.release();                // or let it go out of scope
//
// The claim belongs to this process: it ends with release(), the Lease's destructor, or the
// process's death in any way (kill -9 included). A child started with fork() holds it too
// until it execs or exits. Configuration files, profiles, WITH_GPU_* variables and the
// administrator's banned GPUs apply as they do to the command.
//
// Errors are thrown as with_gpu::Error. Functions are thread-safe; a Lease is not shared
// between threads without synchronisation.
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The library's exported names; everything else in libwith_gpu.so is hidden.
#define WITH_GPU_API __attribute__((visibility("default")))

namespace with_gpu {

// What went wrong, with the `with-gpu` command's exit status for it.
enum class ErrorKind {
    usage,      // a bad setting or value (2)
    no_gpu_now, // nothing suitable is free now, and the request does not wait (75)
    timeout,    // the request's timeout passed while waiting (124)
    impossible, // the request can never be met on this machine (125)
    driver,     // NVML cannot be loaded or read (125)
    failed,     // anything else: the lock directory, the system (125)
    cancelled,  // the caller's cancellation ended a wait (the command dies of its signal)
};

class WITH_GPU_API Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string& message, std::string hint);
    [[nodiscard]] ErrorKind kind() const noexcept { return m_kind; }
    // What the caller can do about it; may be empty.
    [[nodiscard]] const std::string& hint() const noexcept { return m_hint; }
    // The `with-gpu` command's exit status for this kind (cancelled: 130).
    [[nodiscard]] int exit_code() const noexcept;

  private:
    ErrorKind m_kind;
    std::string m_hint;
};

// One setting's value as a caller gives it. Every setting is checked by with-gpu's own
// parsers, exactly as on the command line: {"min_memory", "20G"} or {"min_memory", 20480}
// (a number is MiB, as --min-memory 20480), {"timeout", 90} (seconds) or {"timeout", "5m"},
// {"gpus", std::vector<std::string>{"0", "GPU-8a3f"}}, {"wait", true}.
class WITH_GPU_API Value {
  public:
    Value(bool value);
    Value(int value);
    Value(unsigned value);
    Value(long value);
    Value(long long value);
    Value(double value); // durations in seconds ("1.5")
    Value(const char* text);
    Value(std::string text);
    Value(std::vector<std::string> items); // a list: "0,2"
    Value(std::initializer_list<std::string> items);
    Value(const std::vector<unsigned>& indices);

    // The text form the command line would take.
    [[nodiscard]] const std::string& text() const noexcept { return m_text; }

  private:
    std::string m_text;
};

// What to claim. Settings are named as in configuration files, but --gpu is "gpus"
// (with-gpu --show-config lists them; settings() describes each, with an example), e.g.
// count, gpus, exclude, min_memory, max_util, wait, timeout. An unknown name is a usage Error
// when the request is used.
class WITH_GPU_API Request {
  public:
    Request() = default;
    Request(std::initializer_list<std::pair<std::string, Value>> settings);

    Request& set(std::string name, Value value);
    // Use the settings of [profiles.NAME]; an empty name means none, even when
    // WITH_GPU_PROFILE names one. Unset: WITH_GPU_PROFILE decides, as for the command.
    Request& profile(std::string name);

    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>&
    settings() const noexcept {
        return m_settings;
    }
    [[nodiscard]] const std::optional<std::string>& profile() const noexcept { return m_profile; }

  private:
    std::vector<std::pair<std::string, std::string>> m_settings; // name -> text, as given
    std::optional<std::string> m_profile;
};

// One claimed GPU.
struct Gpu {
    unsigned index = 0;  // NVML index: the PCI order, as nvidia-smi numbers GPUs
    std::string uuid;    // "GPU-8a3f..."
    std::string cuda_id; // how CUDA numbers it in this process: its place in an inherited
                         // CUDA_VISIBLE_DEVICES (or SLURM's id), else the NVML index; assumes
                         // CUDA_DEVICE_ORDER=PCI_BUS_ID
};

// Claimed GPUs, best first. Move-only.
class WITH_GPU_API Lease {
  public:
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    [[nodiscard]] const std::vector<Gpu>& gpus() const noexcept;
    [[nodiscard]] std::vector<unsigned> indices() const;
    [[nodiscard]] std::vector<std::string> uuids() const;
    [[nodiscard]] std::vector<std::string> cuda_ids() const;
    // False after release().
    [[nodiscard]] bool held() const noexcept;
    // Ends the claim now (idempotent). A forked child that still holds the claim's
    // descriptors keeps the GPUs until it exits or execs.
    void release() noexcept;

    struct State; // library-internal

  private:
    friend Lease make_lease(std::unique_ptr<State> state);
    explicit Lease(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

// How a waiting acquire() reports and stops. All optional.
struct WaitOptions {
    // The waiting line ("waiting for 2 GPUs, 3rd in queue, 1m05s: GPU 1: claimed by ..."),
    // each time it changes for more than the ages in it; from the waiting thread.
    std::function<void(const std::string& line)> on_progress;
    // A note: an odd file in the lock directory was ignored, a failed NVML read is retried.
    std::function<void(const std::string& note)> on_note;
    // A descriptor that becomes readable when the wait should end (Error kind cancelled).
    int cancel_fd = -1;
    // Asked whenever the wait wakes up, a signal included; true ends it (kind cancelled).
    std::function<bool()> cancel_requested;
    // When not zero, cancel_requested is also asked at least this often.
    std::chrono::milliseconds check_every{0};
};

// Claims GPUs for `request`, waiting in the queue if the request says wait (or timeout).
[[nodiscard]] WITH_GPU_API Lease acquire(const Request& request = {}, const WaitOptions& wait = {});

// Which GPUs acquire() would take now, and why each other GPU would not be taken: the data of
// `with-gpu --dry-run --json`, as JSON text.
[[nodiscard]] WITH_GPU_API std::string would_choose_json(const Request& request = {});

// Every GPU, its figures, processes and claim, and the queue: `with-gpu --status --json`, as
// JSON text (docs/json.md). Only lock_dir and nvml_library of `request` matter.
[[nodiscard]] WITH_GPU_API std::string status_json(const Request& request = {});

// A setting a request can give, for introspection (the Python package builds its keyword
// arguments and their documentation from these).
struct SettingInfo {
    std::string name;         // "min_memory"
    std::string kind;         // "whole_number", "gpu_list", "text", "absolute_path", "boolean",
                              // "size", "duration"
    std::string default_text; // the built-in default in text form, "" if none
    std::string help;         // one line
    std::string example;      // "20G"
};
[[nodiscard]] WITH_GPU_API std::vector<SettingInfo> settings();

// "0.1.0"
[[nodiscard]] WITH_GPU_API std::string_view version() noexcept;

} // namespace with_gpu
