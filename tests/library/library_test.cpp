// include/with_gpu/with_gpu.hpp against the NVML simulator: leases, requests, errors,
// cancellation, and the administrator's banned GPUs (through the test-only Context).
#include "library/context.hpp"
#include "support/machine_file.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "with_gpu/with_gpu.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace {

using withgpu::testing::TempDir;

nlohmann::json idle_gpu(unsigned index) {
    return {{"name", "NVIDIA A100-SXM4-80GB"},
            {"uuid", "GPU-0000000" + std::to_string(index) + "-1111-4222-8333-000000000000"},
            {"pci_bus_id", "00000000:1" + std::to_string(index) + ":00.0"},
            {"memory_total_mib", 81920},
            {"utilization_percent", 0},
            {"temperature_c", 30},
            {"power_mw", 60000},
            {"power_limit_mw", 400000},
            {"processes", nlohmann::json::array()}};
}

class LibraryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        nlohmann::json gpus = nlohmann::json::array();
        for (unsigned i = 0; i < 4; ++i) {
            gpus.push_back(idle_gpu(i));
        }
        withgpu::testing::write_machine_file(m_dir.path() / "machine.json",
                                             {{"driver_version", "550.54.15"}, {"gpus", gpus}});
        m_context.env.variables = {"WITH_GPU_LOCK_DIR=" + lock_dir(),
                                   std::string("WITH_GPU_NVML_LIBRARY=") + WITH_GPU_SIM_LIBRARY,
                                   "XDG_CONFIG_HOME=" + (m_dir.path() / "config").string()};
        m_context.installation.system_config = (m_dir.path() / "system.toml").string();
    }

    [[nodiscard]] std::string lock_dir() const { return (m_dir.path() / "locks").string(); }

    void system_file(const std::string& text) const {
        std::ofstream(m_context.installation.system_config) << text;
    }

    [[nodiscard]] nlohmann::json status() const {
        return nlohmann::json::parse(with_gpu::detail::status_json({}, m_context));
    }

    TempDir m_dir;
    with_gpu::detail::Context m_context;
};

TEST_F(LibraryTest, ALeaseHoldsItsGpusUntilReleased) {
    with_gpu::Lease lease = with_gpu::detail::acquire({{"count", 2}}, {}, m_context);
    EXPECT_TRUE(lease.held());
    EXPECT_EQ(lease.indices(), (std::vector<unsigned>{0, 1}));
    EXPECT_EQ(lease.cuda_ids(), (std::vector<std::string>{"0", "1"}));
    EXPECT_EQ(lease.uuids().at(1), idle_gpu(1)["uuid"]);
    const auto doc = status();
    EXPECT_EQ(doc["gpus"][0]["claim"]["pid"], ::getpid());
    EXPECT_TRUE(doc["gpus"][2]["claim"].is_null());

    with_gpu::Lease moved = std::move(lease);
    EXPECT_TRUE(moved.held());
    moved.release();
    EXPECT_FALSE(moved.held());
    moved.release(); // idempotent
    EXPECT_TRUE(status()["gpus"][0]["claim"].is_null());
}

TEST_F(LibraryTest, TheDestructorReleases) {
    { const auto lease = with_gpu::detail::acquire({{"count", 4}}, {}, m_context); }
    const auto again = with_gpu::detail::acquire({{"count", 4}}, {}, m_context);
    EXPECT_EQ(again.indices().size(), 4U);
}

TEST_F(LibraryTest, NothingFreeIsNoGpuNowWithTheCommandsExitCode) {
    const auto all = with_gpu::detail::acquire({{"count", 4}}, {}, m_context);
    try {
        (void)with_gpu::detail::acquire({}, {}, m_context);
        FAIL() << "acquired a claimed GPU";
    } catch (const with_gpu::Error& e) {
        EXPECT_EQ(e.kind(), with_gpu::ErrorKind::no_gpu_now);
        EXPECT_EQ(e.exit_code(), 75);
    }
}

TEST_F(LibraryTest, BadSettingsAreUsageErrorsThatNameTheKeyword) {
    const std::vector<std::pair<with_gpu::Request, std::string>> cases = {
        {{{"nosuch", 1}}, "nosuch"},
        {{{"min_memory", "20Q"}}, "min_memory"},
        {{{"count", 0}}, "count"},
        {{{"banned", "0"}}, "banned"}, // the administrator's, never a caller's
    };
    for (const auto& [request, fragment] : cases) {
        try {
            (void)with_gpu::detail::acquire(request, {}, m_context);
            ADD_FAILURE() << fragment << ": no error";
        } catch (const with_gpu::Error& e) {
            EXPECT_EQ(e.kind(), with_gpu::ErrorKind::usage) << e.what();
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
            EXPECT_EQ(e.exit_code(), 2);
        }
    }
}

TEST_F(LibraryTest, TheSystemFilesBannedGpusAreNeverGiven) {
    system_file("[defaults]\nbanned = [0, 1]\n");
    const auto lease = with_gpu::detail::acquire({{"min_gpus", 1}, {"max_gpus", 4}}, {}, m_context);
    EXPECT_EQ(lease.indices(), (std::vector<unsigned>{2, 3}));
    try {
        (void)with_gpu::detail::acquire({{"gpus", std::vector<unsigned>{0}}}, {}, m_context);
        FAIL() << "a banned GPU was given";
    } catch (const with_gpu::Error& e) {
        EXPECT_NE(std::string(e.what()).find("banned"), std::string::npos) << e.what();
    }
}

TEST_F(LibraryTest, AProfileChosenByTheCallerApplies) {
    std::filesystem::create_directories(m_dir.path() / "config" / "with-gpu");
    std::ofstream(m_dir.path() / "config" / "with-gpu" / "config.toml")
        << "[profiles.pair]\ncount = 2\n";
    EXPECT_EQ(with_gpu::detail::acquire(with_gpu::Request().profile("pair"), {}, m_context)
                  .indices()
                  .size(),
              2U);
}

TEST_F(LibraryTest, ACancelDescriptorEndsAWait) {
    // Another process holds every GPU (this one would otherwise be told it waits for itself).
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t holder = withgpu::testing::fork_process([&] {
        const auto all = with_gpu::detail::acquire({{"count", 4}}, {}, m_context);
        (void)!::write(ready[1], "r", 1);
        ::pause();
        return 0;
    });
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::vector<std::string> lines;
    with_gpu::WaitOptions options;
    options.cancel_fd = fds[0];
    options.on_progress = [&](const std::string& line) {
        lines.push_back(line);
        EXPECT_EQ(::write(fds[1], "x", 1), 1); // cancel once the wait has begun
    };
    try {
        (void)with_gpu::detail::acquire({{"wait", true}, {"poll", "1h"}}, options, m_context);
        FAIL() << "the wait was not cancelled";
    } catch (const with_gpu::Error& e) {
        EXPECT_EQ(e.kind(), with_gpu::ErrorKind::cancelled) << e.what();
    }
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines[0].find("waiting for 1 GPU"), std::string::npos) << lines[0];
    EXPECT_TRUE(status()["queue"].empty());
    ::kill(holder, SIGKILL);
    EXPECT_TRUE(withgpu::testing::wait_for(holder).has_value());
    for (int fd : {fds[0], fds[1], ready[0], ready[1]}) {
        ::close(fd);
    }
}

TEST_F(LibraryTest, AProgramWithALeaseMayWaitForOtherGpusButNeverForItsOwn) {
    const auto mine = with_gpu::detail::acquire({{"count", 3}}, {}, m_context);
    try {
        (void)with_gpu::detail::acquire({{"count", 2}, {"wait", true}}, {}, m_context);
        FAIL() << "waited for its own GPUs";
    } catch (const with_gpu::Error& e) {
        EXPECT_EQ(e.kind(), with_gpu::ErrorKind::failed);
        EXPECT_NE(std::string(e.what()).find("already holds"), std::string::npos) << e.what();
    }
    const auto more = with_gpu::detail::acquire({{"count", 1}, {"wait", true}}, {}, m_context);
    EXPECT_EQ(more.indices(), (std::vector<unsigned>{3}));
}

TEST_F(LibraryTest, WouldChooseClaimsNothing) {
    const auto doc =
        nlohmann::json::parse(with_gpu::detail::would_choose_json({{"count", 3}}, m_context));
    EXPECT_EQ(doc["chosen"], (std::vector<unsigned>{0, 1, 2}));
    EXPECT_TRUE(status()["gpus"][0]["claim"].is_null());
}

TEST(LibraryValueTest, ValuesTakeTheCommandLinesTextForm) {
    EXPECT_EQ(with_gpu::Value(true).text(), "true");
    EXPECT_EQ(with_gpu::Value(20480).text(), "20480");
    EXPECT_EQ(with_gpu::Value(1.5).text(), "1.5");
    EXPECT_EQ(with_gpu::Value("20G").text(), "20G");
    EXPECT_EQ(with_gpu::Value(std::vector<unsigned>{0, 2}).text(), "0,2");
    EXPECT_EQ(with_gpu::Value({"0", "GPU-8a3f"}).text(), "0,GPU-8a3f");
    with_gpu::Request request{{"count", 1}};
    request.set("count", 2).set("wait", true);
    EXPECT_EQ(request.settings(),
              (std::vector<std::pair<std::string, std::string>>{{"count", "2"}, {"wait", "true"}}));
}

TEST(LibraryValueTest, SettingsDescribeEveryKeywordACallerMayGive) {
    std::vector<std::string> names;
    for (const auto& s : with_gpu::settings()) {
        names.push_back(s.name);
        EXPECT_FALSE(s.help.empty()) << s.name;
    }
    for (const char* keyword : {"count", "gpus", "min_memory", "timeout", "lock_dir"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), keyword), names.end()) << keyword;
    }
    EXPECT_EQ(std::find(names.begin(), names.end(), "banned"), names.end());
    EXPECT_FALSE(with_gpu::version().empty());
}

} // namespace
