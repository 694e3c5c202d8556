// What the CUDA tests share: a machine file of their own, what NVML says about it, and
// children that hold memory until they are killed.
#pragma once

#include "os/fd.hpp"
#include "support/machine_file.hpp"
#include "support/nvml_snapshot.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace withgpu::testing {

inline constexpr std::uint64_t mib = 1024ULL * 1024ULL;
inline constexpr std::uint64_t gib = 1024ULL * mib;

// GPU n at bus 0n, 512 MiB reserved and 300 MiB per CUDA context (the defaults, spelled out).
inline nlohmann::json cuda_gpu(int n, unsigned total_mib = 81920) {
    const std::string digit = std::to_string(n);
    return nlohmann::json{
        {"name", "NVIDIA A100-SXM4-80GB"},
        {"uuid", "GPU-" + digit + "1234567-89ab-cdef-0123-456789abcdef"},
        {"pci_bus_id", "00000000:0" + digit + ":00.0"},
        {"memory_total_mib", total_mib},
        {"memory_reserved_mib", 512},
        {"cuda_context_mib", 300},
    };
}

inline nlohmann::json machine_of(nlohmann::json gpus) {
    return nlohmann::json{{"gpus", std::move(gpus)}};
}

class SimMachine : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(::unsetenv("WITH_GPU_SIM_STATE"), 0);
        ASSERT_EQ(::unsetenv("CUDA_VISIBLE_DEVICES"), 0);
    }

    void write_machine(const nlohmann::json& machine) {
        write_machine_file(machine_path(), machine);
    }

    [[nodiscard]] std::filesystem::path machine_path() const {
        return m_dir.path() / "machine.json";
    }

    // A fresh NVML session's snapshot of the machine.
    [[nodiscard]] static gpu::MachineSnapshot nvml_snapshot() {
        return snapshot_through(WITH_GPU_SIM_LIBRARY);
    }

    // The memory NVML shows for `pid` on GPU `index`; nullopt when the pid is not listed.
    [[nodiscard]] static std::optional<std::uint64_t> nvml_memory_of(unsigned index, pid_t pid) {
        const auto snapshot = nvml_snapshot();
        if (index >= snapshot.gpus.size() || !snapshot.gpus[index].processes) {
            ADD_FAILURE() << "no process list for GPU " << index;
            return std::nullopt;
        }
        for (const auto& process : *snapshot.gpus[index].processes) {
            if (process.pid == static_cast<unsigned>(pid)) {
                EXPECT_EQ(process.kind, gpu::Process::Kind::compute);
                return process.used_memory_bytes.value_or(0);
            }
        }
        return std::nullopt;
    }

    [[nodiscard]] static std::uint64_t nvml_used(unsigned index) {
        const auto snapshot = nvml_snapshot();
        return index < snapshot.gpus.size() ? snapshot.gpus[index].memory_used_bytes.value_or(0)
                                            : 0;
    }

    TempDir m_dir;
};

// Runs body() in a forked child; returns its exit status, or 128 + the signal that ended it.
template <typename Body> int in_child(Body body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::_exit(body());
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A child that runs hold() (0 on success), tells the parent through a pipe, and then waits
// to be killed. The destructor kills and reaps it if the test has not.
class HoldingChild {
  public:
    template <typename Hold> explicit HoldingChild(Hold hold) {
        int fds[2] = {-1, -1};
        if (::pipe(fds) != 0) {
            return;
        }
        Fd read_end(fds[0]);
        Fd write_end(fds[1]);
        m_pid = ::fork();
        if (m_pid == 0) {
            read_end.reset();
            const char result = static_cast<char>(hold());
            if (::write(write_end.get(), &result, 1) != 1) {
                ::_exit(1);
            }
            for (;;) {
                ::pause();
            }
        }
        write_end.reset(); // so that the read ends if the child dies first
        char result = 1;
        m_ready = m_pid > 0 && ::read(read_end.get(), &result, 1) == 1 && result == 0;
    }
    HoldingChild(const HoldingChild&) = delete;
    HoldingChild& operator=(const HoldingChild&) = delete;
    ~HoldingChild() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            reap();
        }
    }

    [[nodiscard]] pid_t pid() const { return m_pid; }
    [[nodiscard]] bool ready() const { return m_ready; }

    // SIGKILL, then wait until it has exited, without reaping it: a zombie holds no GPU
    // memory, as with the real driver.
    void kill_and_await_zombie() const {
        ::kill(m_pid, SIGKILL);
        siginfo_t info{};
        ::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOWAIT);
    }

    void reap() {
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
    }

  private:
    pid_t m_pid = -1;
    bool m_ready = false;
};

} // namespace withgpu::testing
