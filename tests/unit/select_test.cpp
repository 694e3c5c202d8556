#include "selection/select.hpp"
#include "snapshot_builder.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

namespace withgpu::selection {
namespace {

using ::testing::ElementsAre;
using withgpu::testing::gib;
using withgpu::testing::make_gpu;
using withgpu::testing::make_machine;
using withgpu::testing::make_process;
using withgpu::testing::mib_bytes;
using withgpu::testing::uuid_for;

constexpr std::int64_t now = 1'700'000'000;

std::vector<GpuRef> refs(const std::string& text, bool allow_names = true) {
    auto parsed = parse_gpu_list(text, "--gpu", allow_names);
    EXPECT_TRUE(parsed.has_value()) << text;
    return parsed ? *parsed : std::vector<GpuRef>{};
}

Request want(unsigned min_gpus, unsigned max_gpus) {
    Request request;
    request.min_gpus = min_gpus;
    request.max_gpus = max_gpus;
    return request;
}

std::vector<std::string> reasons(const GpuVerdict& verdict) {
    std::vector<std::string> texts;
    for (const auto& rejection : verdict.rejections) {
        texts.push_back(rejection.reason);
    }
    return texts;
}

bool has_permanent(const GpuVerdict& verdict) {
    for (const auto& rejection : verdict.rejections) {
        if (rejection.permanent) {
            return true;
        }
    }
    return false;
}

// The decision is internally consistent whatever the outcome.
void expect_consistent(const gpu::MachineSnapshot& machine, const Decision& decision) {
    ASSERT_EQ(decision.verdicts.size(), machine.gpus.size());
    std::size_t chosen_flags = 0;
    for (std::size_t i = 0; i < machine.gpus.size(); ++i) {
        EXPECT_EQ(decision.verdicts[i].index, machine.gpus[i].index);
        if (decision.verdicts[i].chosen) {
            ++chosen_flags;
            EXPECT_TRUE(decision.verdicts[i].rejections.empty());
        }
    }
    EXPECT_EQ(chosen_flags, decision.chosen.size());
    if (decision.outcome != Decision::Outcome::chosen) {
        EXPECT_TRUE(decision.chosen.empty());
    }
}

Decision run_select(const gpu::MachineSnapshot& machine,
                    const Request& request,
                    const gpu::ClaimMap& claims = {}) {
    auto decision = select(machine, request, claims, now);
    expect_consistent(machine, decision);
    return decision;
}

// --- basics ----------------------------------------------------------------------------------

TEST(Select, DefaultRequestTakesTheLowestIndexAmongEquals) {
    const auto machine = make_machine(4);
    const auto decision = run_select(machine, Request{});
    EXPECT_EQ(decision.outcome, Decision::Outcome::chosen);
    EXPECT_THAT(decision.chosen, ElementsAre(0U));
    EXPECT_EQ(decision.summary, "chose GPU 0");
    EXPECT_TRUE(decision.verdicts[0].chosen);
    EXPECT_FALSE(decision.verdicts[1].chosen);
    for (const auto& verdict : decision.verdicts) {
        EXPECT_TRUE(verdict.rejections.empty());
        EXPECT_FALSE(verdict.preferred);
    }
}

TEST(Select, OneVerdictPerGpuInSnapshotOrder) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(2), make_gpu(0), make_gpu(1)};
    const auto decision = run_select(machine, Request{});
    ASSERT_EQ(decision.verdicts.size(), 3U);
    EXPECT_EQ(decision.verdicts[0].index, 2U);
    EXPECT_EQ(decision.verdicts[1].index, 0U);
    EXPECT_EQ(decision.verdicts[2].index, 1U);
    EXPECT_THAT(decision.chosen, ElementsAre(0U));
    EXPECT_TRUE(decision.verdicts[1].chosen);
}

// --- ranking ---------------------------------------------------------------------------------

TEST(Ranking, MostFreeMemoryFirst) {
    auto machine = make_machine(3);
    machine.gpus[0].memory_free_bytes = gib(10);
    machine.gpus[1].memory_free_bytes = gib(30);
    machine.gpus[2].memory_free_bytes = gib(20);
    const auto decision = run_select(machine, want(1, 3));
    EXPECT_THAT(decision.chosen, ElementsAre(1U, 2U, 0U));
    EXPECT_EQ(decision.summary, "chose GPU 1, GPU 2, GPU 0");
}

TEST(Ranking, UnknownFreeMemoryLast) {
    auto machine = make_machine(3);
    machine.gpus[0].memory_free_bytes.reset();
    machine.gpus[1].memory_free_bytes = gib(1);
    machine.gpus[2].memory_free_bytes = gib(2);
    EXPECT_THAT(run_select(machine, want(1, 3)).chosen, ElementsAre(2U, 1U, 0U));
    EXPECT_THAT(run_select(machine, want(1, 1)).chosen, ElementsAre(2U));
}

TEST(Ranking, EqualFreeMemoryThenFewestProcesses) {
    auto machine = make_machine(3);
    machine.gpus[0].processes = std::vector<gpu::Process>{make_process(1), make_process(2)};
    machine.gpus[1].processes = std::vector<gpu::Process>{make_process(3)};
    machine.gpus[2].processes = std::vector<gpu::Process>{make_process(4), make_process(5)};
    // More free memory still wins over fewer processes.
    machine.gpus[2].memory_free_bytes = gib(80) + 1;
    EXPECT_THAT(run_select(machine, want(1, 3)).chosen, ElementsAre(2U, 1U, 0U));
}

TEST(Ranking, UnknownProcessListLast) {
    auto machine = make_machine(3);
    machine.gpus[0].processes.reset();
    machine.gpus[1].processes = std::vector<gpu::Process>{make_process(1), make_process(2)};
    machine.gpus[2].processes = std::vector<gpu::Process>{make_process(3)};
    EXPECT_THAT(run_select(machine, want(1, 3)).chosen, ElementsAre(2U, 1U, 0U));
}

TEST(Ranking, FullTieByLowestIndexWhateverTheSnapshotOrder) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(3), make_gpu(1), make_gpu(2), make_gpu(0)};
    EXPECT_THAT(run_select(machine, want(1, 4)).chosen, ElementsAre(0U, 1U, 2U, 3U));
    // Ties with unknown metrics also fall back to the index.
    for (auto& gpu : machine.gpus) {
        gpu.memory_free_bytes.reset();
        gpu.processes.reset();
    }
    EXPECT_THAT(run_select(machine, want(2, 2)).chosen, ElementsAre(0U, 1U));
}

TEST(Ranking, GpuTypeIsPreferredBeforeFreeMemory) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(0, "Tesla V100-SXM2-32GB", 32, 32),
                    make_gpu(1, "NVIDIA A100-SXM4-80GB", 80, 10),
                    make_gpu(2, "Tesla V100-SXM2-32GB", 32, 31),
                    make_gpu(3, "NVIDIA A100-SXM4-40GB", 40, 20)};
    auto request = want(1, 4);
    request.gpu_type = "a100";
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::chosen);
    EXPECT_THAT(decision.chosen, ElementsAre(3U, 1U, 0U, 2U));
    EXPECT_FALSE(decision.verdicts[0].preferred);
    EXPECT_TRUE(decision.verdicts[1].preferred);
    EXPECT_FALSE(decision.verdicts[2].preferred);
    EXPECT_TRUE(decision.verdicts[3].preferred);
    // Without --strict the other models stay eligible.
    EXPECT_TRUE(decision.verdicts[0].rejections.empty());
}

TEST(Ranking, GpuTypeFallsBackToOtherModelsWhenPreferredAreBusy) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(0, "Tesla V100-SXM2-32GB", 32, 32), make_gpu(1)};
    machine.gpus[1].utilization_percent = 90;
    auto request = want(1, 1);
    request.gpu_type = "A100";
    request.max_utilization_percent = 10;
    EXPECT_THAT(run_select(machine, request).chosen, ElementsAre(0U));
}

TEST(Ranking, StrictGpuTypeRejectsOtherModelsPermanently) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(0, "Tesla V100-SXM2-32GB", 32, 32), make_gpu(1)};
    auto request = want(1, 2);
    request.gpu_type = "A100";
    request.strict_type = true;
    const auto decision = run_select(machine, request);
    EXPECT_THAT(decision.chosen, ElementsAre(1U));
    ASSERT_EQ(decision.verdicts[0].rejections.size(), 1U);
    EXPECT_EQ(decision.verdicts[0].rejections[0].reason, "not a A100 (--gpu-type, --strict)");
    EXPECT_TRUE(decision.verdicts[0].rejections[0].permanent);
}

TEST(Ranking, StrictGpuTypeWithNoMatchIsImpossible) {
    auto machine = make_machine(2);
    auto request = want(1, 1);
    request.gpu_type = "H100";
    request.strict_type = true;
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_EQ(decision.summary, "need 1 GPU, none could ever qualify");

    // The same request without --strict simply takes what there is.
    request.strict_type = false;
    EXPECT_EQ(run_select(machine, request).outcome, Decision::Outcome::chosen);
}

// --- each filter alone -----------------------------------------------------------------------

struct FilterCase {
    std::string label;
    std::function<void(gpu::GpuSnapshot&, Request&)> setup; // applied to GPU 1 of two
    std::string reason;
    bool permanent;
};

void PrintTo(const FilterCase& c, std::ostream* os) {
    *os << c.label;
}

class EachFilter : public ::testing::TestWithParam<FilterCase> {};

TEST_P(EachFilter, RejectsWithItsReason) {
    const auto& param = GetParam();
    auto machine = make_machine(2);
    Request request;
    param.setup(machine.gpus[1], request);
    const auto decision = run_select(machine, request);

    EXPECT_TRUE(decision.verdicts[0].rejections.empty()) << describe(decision.verdicts[0]);
    ASSERT_EQ(decision.verdicts[1].rejections.size(), 1U) << describe(decision.verdicts[1]);
    EXPECT_EQ(decision.verdicts[1].rejections[0].reason, param.reason);
    EXPECT_EQ(decision.verdicts[1].rejections[0].permanent, param.permanent);
    EXPECT_THAT(decision.chosen, ElementsAre(0U));

    // With GPU 1 needed too, the outcome says whether waiting could help.
    request.min_gpus = 2;
    request.max_gpus = 2;
    const auto both = run_select(machine, request);
    EXPECT_EQ(both.outcome,
              param.permanent ? Decision::Outcome::impossible : Decision::Outcome::none_now);
}

INSTANTIATE_TEST_SUITE_P(
    Filters,
    EachFilter,
    ::testing::Values(
        FilterCase{"lost",
                   [](gpu::GpuSnapshot& g, Request&) { g.error = "GPU is lost"; },
                   "GPU is lost",
                   true},
        FilterCase{"not_in_gpu_list",
                   [](gpu::GpuSnapshot&, Request& r) { r.only = refs("0,2", false); },
                   "not in --gpu 0,2",
                   true},
        FilterCase{"excluded",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.name = "Tesla V100-SXM2-16GB";
                       r.exclude = refs("name:V100");
                   },
                   "excluded by --exclude name:V100",
                   true},
        FilterCase{"not_visible",
                   [](gpu::GpuSnapshot&, Request& r) {
                       r.visible = parse_cuda_visible_devices("0,2").value();
                   },
                   "not in CUDA_VISIBLE_DEVICES=0,2",
                   true},
        FilterCase{"strict_type",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.name = "Tesla V100-SXM2-16GB";
                       r.gpu_type = "A100";
                       r.strict_type = true;
                   },
                   "not a A100 (--gpu-type, --strict)",
                   true},
        FilterCase{"total_too_small",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.memory_total_bytes = gib(40);
                       g.memory_free_bytes = gib(40);
                       r.min_free_bytes = gib(60);
                   },
                   "40 GiB total < 60 GiB wanted",
                   true},
        FilterCase{"free_too_small",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.memory_free_bytes = gib(3.1);
                       r.min_free_bytes = gib(20);
                   },
                   "3.1 GiB free < 20 GiB",
                   false},
        FilterCase{"free_unknown",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.memory_free_bytes.reset();
                       r.min_free_bytes = gib(20);
                   },
                   "free memory unknown",
                   false},
        FilterCase{"util",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.utilization_percent = 87;
                       r.max_utilization_percent = 10;
                   },
                   "util 87% > 10%",
                   false},
        FilterCase{"util_unknown",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.utilization_percent.reset();
                       r.max_utilization_percent = 10;
                   },
                   "utilisation unknown",
                   false},
        FilterCase{"temperature",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.temperature_c = 84;
                       r.max_temperature_c = 80;
                   },
                   "84°C > 80°C",
                   false},
        FilterCase{"temperature_unknown",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.temperature_c.reset();
                       r.max_temperature_c = 80;
                   },
                   "temperature unknown",
                   false},
        FilterCase{"power",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.power_w = 312.3;
                       r.max_power_w = 250;
                   },
                   "312 W > 250 W",
                   false},
        FilterCase{"power_unknown",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.power_w.reset();
                       r.max_power_w = 250;
                   },
                   "power draw unknown",
                   false},
        FilterCase{"busy_two",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.processes = std::vector<gpu::Process>{make_process(10), make_process(11)};
                       r.require_idle = true;
                   },
                   "2 processes running (require-idle)",
                   false},
        FilterCase{"busy_one",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.processes = std::vector<gpu::Process>{make_process(10)};
                       r.require_idle = true;
                   },
                   "1 process running (require-idle)",
                   false},
        FilterCase{"processes_unknown",
                   [](gpu::GpuSnapshot& g, Request& r) {
                       g.processes.reset();
                       r.require_idle = true;
                   },
                   "process list unknown",
                   false}),
    [](const ::testing::TestParamInfo<FilterCase>& param_info) { return param_info.param.label; });

TEST(Filters, ThresholdsAreInclusive) {
    auto machine = make_machine(1);
    auto& gpu = machine.gpus[0];
    gpu.memory_free_bytes = gib(20);
    gpu.utilization_percent = 10;
    gpu.temperature_c = 80;
    gpu.power_w = 250.0;
    Request request;
    request.min_free_bytes = gib(20);
    request.max_utilization_percent = 10;
    request.max_temperature_c = 80;
    request.max_power_w = 250.0;
    const auto decision = run_select(machine, request);
    EXPECT_TRUE(decision.verdicts[0].rejections.empty()) << describe(decision.verdicts[0]);
    EXPECT_THAT(decision.chosen, ElementsAre(0U));

    // Total memory exactly the minimum is enough too.
    gpu.memory_total_bytes = gib(20);
    EXPECT_THAT(run_select(machine, request).chosen, ElementsAre(0U));
}

TEST(Filters, UnknownMetricsPassWithoutThresholds) {
    auto machine = make_machine(1);
    auto& gpu = machine.gpus[0];
    gpu.memory_total_bytes.reset();
    gpu.memory_free_bytes.reset();
    gpu.memory_used_bytes.reset();
    gpu.utilization_percent.reset();
    gpu.temperature_c.reset();
    gpu.power_w.reset();
    gpu.power_limit_w.reset();
    gpu.processes.reset();
    const auto decision = run_select(machine, Request{});
    EXPECT_TRUE(decision.verdicts[0].rejections.empty()) << describe(decision.verdicts[0]);
    EXPECT_EQ(decision.outcome, Decision::Outcome::chosen);
}

TEST(Filters, BusyGpuPassesWithoutRequireIdle) {
    auto machine = make_machine(1);
    machine.gpus[0].processes = std::vector<gpu::Process>{make_process(1), make_process(2)};
    machine.gpus[0].utilization_percent = 100;
    EXPECT_THAT(run_select(machine, Request{}).chosen, ElementsAre(0U));
}

TEST(Filters, UnknownTotalMemoryIsNotPermanent) {
    auto machine = make_machine(1);
    machine.gpus[0].memory_total_bytes.reset();
    machine.gpus[0].memory_free_bytes = gib(4);
    Request request;
    request.min_free_bytes = gib(20);
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::none_now);
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("4 GiB free < 20 GiB"));
}

TEST(Filters, NearlyEqualSizesAreShownPreciselyEnoughToDiffer) {
    auto machine = make_machine(1);
    machine.gpus[0].memory_free_bytes = gib(20) - mib_bytes;
    Request request;
    request.min_free_bytes = gib(20);
    EXPECT_THAT(reasons(run_select(machine, request).verdicts[0]),
                ElementsAre("20479 MiB free < 20480 MiB"));

    // Within the same MiB only bytes tell them apart.
    machine.gpus[0].memory_free_bytes = gib(20) + 1;
    request.min_free_bytes = gib(20) + 1000;
    EXPECT_THAT(reasons(run_select(machine, request).verdicts[0]),
                ElementsAre("21474836481 B free < 21474837480 B"));
}

TEST(Filters, NearlyEqualPowerIsShownWithADecimal) {
    auto machine = make_machine(1);
    machine.gpus[0].power_w = 250.4;
    Request request;
    request.max_power_w = 250.0;
    EXPECT_THAT(reasons(run_select(machine, request).verdicts[0]),
                ElementsAre("250.4 W > 250.0 W"));
}

// --- several reasons -------------------------------------------------------------------------

TEST(Reasons, AllAreCollectedInAFixedOrder) {
    auto machine = make_machine(2);
    auto& gpu = machine.gpus[1];
    gpu.memory_free_bytes = gib(3.1);
    gpu.utilization_percent = 87;
    gpu.temperature_c = 84;
    gpu.power_w = 312.0;
    gpu.processes = std::vector<gpu::Process>{make_process(4242), make_process(4243)};
    Request request;
    request.min_free_bytes = gib(20);
    request.max_utilization_percent = 10;
    request.max_temperature_c = 80;
    request.max_power_w = 250;
    request.require_idle = true;
    gpu::ClaimMap claims;
    claims[gpu.uuid] = gpu::ClaimHolder{4242, 4200, "alice", "python train.py", now - 125};

    const auto decision = run_select(machine, request, claims);
    EXPECT_EQ(describe(decision.verdicts[1]),
              "GPU 1: claimed by alice (pid 4242, python train.py) for 2m05s; "
              "3.1 GiB free < 20 GiB; util 87% > 10%; 84°C > 80°C; 312 W > 250 W; "
              "2 processes running (require-idle)");
    EXPECT_FALSE(has_permanent(decision.verdicts[1]));
    EXPECT_THAT(decision.chosen, ElementsAre(0U));
}

TEST(Reasons, PermanentAndTemporaryTogether) {
    auto machine = make_machine(2);
    machine.gpus[0].utilization_percent = 50;
    machine.gpus[0].memory_total_bytes = gib(16);
    machine.gpus[0].memory_free_bytes = gib(2);
    Request request;
    request.exclude = refs("0");
    request.visible = parse_cuda_visible_devices("1").value();
    request.max_utilization_percent = 10;
    request.min_free_bytes = gib(20);
    const auto decision = run_select(machine, request);
    EXPECT_THAT(reasons(decision.verdicts[0]),
                ElementsAre("excluded by --exclude 0",
                            "not in CUDA_VISIBLE_DEVICES=1",
                            "16 GiB total < 20 GiB wanted",
                            "util 50% > 10%"));
    EXPECT_TRUE(has_permanent(decision.verdicts[0]));
    EXPECT_FALSE(decision.verdicts[0].rejections[3].permanent);
    EXPECT_THAT(decision.chosen, ElementsAre(1U));
}

TEST(Reasons, LostGpuIsNeverChosenAndGetsNoMetricNoise) {
    auto machine = make_machine(2);
    machine.gpus[0].error = "GPU is lost";
    machine.gpus[0].memory_free_bytes.reset();
    machine.gpus[0].utilization_percent.reset();
    machine.gpus[0].processes.reset();
    Request request = want(1, 2);
    request.min_free_bytes = gib(1);
    request.max_utilization_percent = 50;
    request.require_idle = true;
    const auto decision = run_select(machine, request);
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("GPU is lost"));
    EXPECT_TRUE(decision.verdicts[0].rejections[0].permanent);
    EXPECT_THAT(decision.chosen, ElementsAre(1U));
}

TEST(Reasons, LostGpuWithGoodLookingMetricsIsStillNotChosen) {
    auto machine = make_machine(1);
    machine.gpus[0].error = "GPU is lost";
    const auto decision = run_select(machine, Request{});
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_FALSE(decision.verdicts[0].chosen);
    EXPECT_EQ(decision.summary, "need 1 GPU, none could ever qualify");
}

TEST(Reasons, LostGpuStillReportsIdentityFilters) {
    auto machine = make_machine(2);
    machine.gpus[0].error = "GPU is lost";
    Request request;
    request.only = refs("1", false);
    EXPECT_THAT(reasons(run_select(machine, request).verdicts[0]),
                ElementsAre("GPU is lost", "not in --gpu 1"));
}

// --- claims ----------------------------------------------------------------------------------

struct ClaimCase {
    gpu::ClaimHolder holder;
    std::string reason;
};

void PrintTo(const ClaimCase& c, std::ostream* os) {
    *os << '"' << c.reason << '"';
}

class Claims : public ::testing::TestWithParam<ClaimCase> {};

TEST_P(Claims, RejectWithHolderText) {
    auto machine = make_machine(2);
    gpu::ClaimMap claims{{uuid_for(0), GetParam().holder}};
    const auto decision = run_select(machine, Request{}, claims);
    ASSERT_EQ(decision.verdicts[0].rejections.size(), 1U);
    EXPECT_EQ(decision.verdicts[0].rejections[0].reason, GetParam().reason);
    EXPECT_FALSE(decision.verdicts[0].rejections[0].permanent);
    EXPECT_THAT(decision.chosen, ElementsAre(1U));
}

INSTANTIATE_TEST_SUITE_P(
    Holders,
    Claims,
    ::testing::Values(
        ClaimCase{{4242, 4240, "alice", "python train.py", now - (2 * 3600 + 13 * 60 + 7)},
                  "claimed by alice (pid 4242, python train.py) for 2h13m"},
        ClaimCase{{}, "claimed"},
        ClaimCase{{std::nullopt, std::nullopt, "bob", std::nullopt, std::nullopt},
                  "claimed by bob"},
        ClaimCase{{7, std::nullopt, std::nullopt, std::nullopt, std::nullopt}, "claimed (pid 7)"},
        ClaimCase{{std::nullopt, std::nullopt, std::nullopt, "make test", std::nullopt},
                  "claimed (make test)"},
        ClaimCase{{std::nullopt, std::nullopt, std::nullopt, std::nullopt, now - 45},
                  "claimed for 45s"},
        ClaimCase{{std::nullopt,
                   std::nullopt,
                   "carol",
                   std::nullopt,
                   now - std::int64_t{3} * 86400 - std::int64_t{4} * 3600},
                  "claimed by carol for 3d04h"},
        // A clock that went backwards does not produce a negative duration.
        ClaimCase{{std::nullopt, std::nullopt, "dave", std::nullopt, now + 100},
                  "claimed by dave for 0s"},
        ClaimCase{{1, std::nullopt, std::nullopt, std::string(100, 'x'), std::nullopt},
                  "claimed (pid 1, " + std::string(57, 'x') + "...)"}));

// How long a claim has been held is kept apart, so that a claim growing older is not news.
TEST(ClaimAge, IsTheEndOfTheReasonAndOnlyThat) {
    auto machine = make_machine(1);
    gpu::ClaimMap claims{{uuid_for(0), {4242, 4240, "alice", "train.py", now - 125}}};
    const Rejection held = run_select(machine, Request{}, claims).verdicts[0].rejections[0];
    EXPECT_EQ(held.reason, "claimed by alice (pid 4242, train.py) for 2m05s");
    EXPECT_EQ(held.reason_without_age(), "claimed by alice (pid 4242, train.py)");
    claims[uuid_for(0)].since_unix.reset();
    const Rejection ageless = run_select(machine, Request{}, claims).verdicts[0].rejections[0];
    EXPECT_EQ(ageless.age_bytes, 0U);
    EXPECT_EQ(ageless.reason_without_age(), "claimed by alice (pid 4242, train.py)");
}

TEST(ClaimsMap, ClaimOnAnotherUuidDoesNotMatter) {
    auto machine = make_machine(2);
    gpu::ClaimMap claims{{"GPU-ffffffff-0000-0000-0000-000000000000", gpu::ClaimHolder{}}};
    const auto decision = run_select(machine, want(2, 2), claims);
    EXPECT_EQ(decision.outcome, Decision::Outcome::chosen);
    EXPECT_THAT(decision.chosen, ElementsAre(0U, 1U));
}

TEST(ClaimsMap, ClaimIsKeyedByExactUuid) {
    auto machine = make_machine(1);
    // A prefix of the UUID is not the same GPU's claim.
    gpu::ClaimMap claims{{"GPU-10", gpu::ClaimHolder{}}};
    EXPECT_EQ(run_select(machine, Request{}, claims).outcome, Decision::Outcome::chosen);
}

// --- outcomes --------------------------------------------------------------------------------

TEST(Outcome, MoreGpusThanTheMachineHasIsImpossible) {
    const auto machine = make_machine(8);
    const auto decision = run_select(machine, want(9, 9));
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_EQ(decision.summary, "need 9 GPUs, only 8 could ever qualify");
    EXPECT_TRUE(decision.chosen.empty());
}

TEST(Outcome, TwoWantedOneOfTwoClaimedIsNoneNow) {
    const auto machine = make_machine(2);
    gpu::ClaimMap claims{{uuid_for(1), gpu::ClaimHolder{}}};
    const auto decision = run_select(machine, want(2, 2), claims);
    EXPECT_EQ(decision.outcome, Decision::Outcome::none_now);
    EXPECT_EQ(decision.summary, "need 2 GPUs, only 1 eligible now");
    EXPECT_TRUE(decision.chosen.empty());
    EXPECT_FALSE(decision.verdicts[0].chosen);
}

TEST(Outcome, MinimumMemoryAboveEveryTotalIsImpossible) {
    const auto machine = make_machine(4);
    Request request;
    request.min_free_bytes = gib(100);
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_EQ(decision.summary, "need 1 GPU, none could ever qualify");
    for (const auto& verdict : decision.verdicts) {
        EXPECT_THAT(reasons(verdict), ElementsAre("80 GiB total < 100 GiB wanted"));
    }
}

// The driver's reserved memory is never free: a request only an empty card without it could
// meet can never be met, and must not wait forever.
TEST(Outcome, MinimumMemoryAboveTotalLessReservedIsImpossible) {
    auto machine = make_machine(2);
    for (auto& gpu : machine.gpus) {
        gpu.memory_reserved_bytes = 512 * mib_bytes;
        gpu.memory_free_bytes = gib(80) - 512 * mib_bytes;
    }
    Request request;
    request.min_free_bytes = gib(80);
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    for (const auto& verdict : decision.verdicts) {
        ASSERT_EQ(verdict.rejections.size(), 1U);
        EXPECT_TRUE(verdict.rejections[0].permanent);
        EXPECT_EQ(verdict.rejections[0].reason,
                  "at most 81408 MiB free (80 GiB total, 512 MiB reserved by the driver) < 81920 "
                  "MiB wanted");
    }
    // What the card can offer once empty is still only a temporary shortage.
    request.min_free_bytes = gib(80) - 512 * mib_bytes;
    machine.gpus[0].memory_free_bytes = gib(1);
    const auto later = run_select(machine, request);
    EXPECT_EQ(later.outcome, Decision::Outcome::chosen);
    EXPECT_THAT(later.chosen, ElementsAre(1U));
    EXPECT_FALSE(later.verdicts[0].rejections.at(0).permanent);
}

TEST(Outcome, UnknownReservedMemoryComparesWithTheTotal) {
    auto machine = make_machine(1);
    machine.gpus[0].memory_free_bytes = gib(79);
    Request request;
    request.min_free_bytes = gib(80);
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::none_now);
}

TEST(Outcome, AllBusyIsNoneNow) {
    auto machine = make_machine(3);
    for (auto& gpu : machine.gpus) {
        gpu.utilization_percent = 99;
    }
    Request request;
    request.max_utilization_percent = 5;
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::none_now);
    EXPECT_EQ(decision.summary, "need 1 GPU, none eligible now");
}

TEST(Outcome, NoGpusAtAllIsImpossible) {
    const gpu::MachineSnapshot machine;
    const auto decision = run_select(machine, Request{});
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_TRUE(decision.verdicts.empty());
}

TEST(Outcome, PermanentAndTemporaryMixDecidesByWhatCouldQualify) {
    // 4 GPUs: one excluded, one lost, two busy. Two wanted: could happen later.
    auto machine = make_machine(4);
    machine.gpus[1].error = "GPU is lost";
    machine.gpus[2].utilization_percent = 90;
    machine.gpus[3].utilization_percent = 90;
    Request request = want(2, 2);
    request.exclude = refs("0");
    request.max_utilization_percent = 10;
    EXPECT_EQ(run_select(machine, request).outcome, Decision::Outcome::none_now);
    // Three wanted: never.
    request.min_gpus = request.max_gpus = 3;
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_EQ(decision.summary, "need 3 GPUs, only 2 could ever qualify");
}

TEST(Outcome, GpuListNamingOnlyALostGpuIsImpossible) {
    auto machine = make_machine(2);
    machine.gpus[1].error = "GPU is lost";
    Request request;
    request.only = refs("1", false);
    EXPECT_EQ(run_select(machine, request).outcome, Decision::Outcome::impossible);
}

// --- ranges ----------------------------------------------------------------------------------

TEST(Range, TakesAsManyAsPossibleUpToMax) {
    auto machine = make_machine(5);
    machine.gpus[0].utilization_percent = 90;
    machine.gpus[3].utilization_percent = 90;
    Request request = want(1, 4);
    request.max_utilization_percent = 10;
    const auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::chosen);
    EXPECT_THAT(decision.chosen, ElementsAre(1U, 2U, 4U));
    EXPECT_EQ(decision.summary, "chose GPU 1, GPU 2, GPU 4");
}

TEST(Range, StopsAtMaxTakingTheBest) {
    auto machine = make_machine(6);
    for (unsigned i = 0; i < 6; ++i) {
        machine.gpus[i].memory_free_bytes = gib(10.0 + i);
    }
    const auto decision = run_select(machine, want(2, 4));
    EXPECT_THAT(decision.chosen, ElementsAre(5U, 4U, 3U, 2U));
    EXPECT_FALSE(decision.verdicts[0].chosen);
    EXPECT_TRUE(decision.verdicts[5].chosen);
}

TEST(Range, BelowMinIsNotEnough) {
    auto machine = make_machine(4);
    gpu::ClaimMap claims{{uuid_for(0), {}}, {uuid_for(1), {}}, {uuid_for(2), {}}};
    const auto decision = run_select(machine, want(2, 4), claims);
    EXPECT_EQ(decision.outcome, Decision::Outcome::none_now);
    EXPECT_EQ(decision.summary, "need 2 GPUs, only 1 eligible now");
}

TEST(Range, ExactCount) {
    const auto machine = make_machine(4);
    EXPECT_THAT(run_select(machine, want(2, 2)).chosen, ElementsAre(0U, 1U));
}

// --- --exclude, --gpu and CUDA_VISIBLE_DEVICES by every kind of reference ---------------------

class ExcludeByRef : public ::testing::TestWithParam<std::string> {};

TEST_P(ExcludeByRef, ExcludesOnlyThatGpu) {
    gpu::MachineSnapshot machine;
    machine.gpus = {make_gpu(0, "Tesla V100-SXM2-32GB", 32, 32),
                    make_gpu(1),
                    make_gpu(2, "NVIDIA A100-SXM4-40GB", 40, 10)};
    Request request = want(1, 3);
    request.exclude = refs(GetParam());
    const auto decision = run_select(machine, request);
    // The text for GPU 1 (A100 on bus 0x18, UUID GPU-11...) in each form.
    EXPECT_THAT(reasons(decision.verdicts[1]), ElementsAre("excluded by --exclude " + GetParam()));
    EXPECT_TRUE(decision.verdicts[1].rejections[0].permanent);
    EXPECT_TRUE(decision.verdicts[0].rejections.empty());
    EXPECT_TRUE(decision.verdicts[2].rejections.empty());
    EXPECT_THAT(decision.chosen, ElementsAre(0U, 2U));
}

INSTANTIATE_TEST_SUITE_P(Kinds,
                         ExcludeByRef,
                         ::testing::Values("1",
                                           uuid_for(1),
                                           "GPU-11",
                                           "gpu-11AA1BB2",
                                           "00000000:18:00.0",
                                           "0000:18:00.0",
                                           "18:00.0",
                                           "name:A100-SXM4-80GB"));

TEST(Exclude, FirstMatchingRefIsNamed) {
    auto machine = make_machine(2);
    Request request;
    request.exclude = refs("name:a100,0");
    const auto decision = run_select(machine, request);
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("excluded by --exclude name:a100"));
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
}

TEST(Exclude, BannedGpusSayTheSystemConfigurationBansThem) {
    auto machine = make_machine(3);
    Request request;
    // As cli/ builds it: banned GPUs are part of exclude, and listed on their own too.
    request.exclude = refs("2,GPU-10");
    request.banned = refs("GPU-10");
    const auto decision = run_select(machine, request);
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("banned by the system configuration"));
    EXPECT_TRUE(decision.verdicts[0].rejections[0].permanent);
    EXPECT_THAT(reasons(decision.verdicts[2]), ElementsAre("excluded by --exclude 2"));
    EXPECT_THAT(decision.chosen, ElementsAre(1U));
}

TEST(Reasons, ForeignTextInClaimsCannotReachTheTerminal) {
    auto machine = make_machine(2);
    gpu::ClaimHolder holder;
    holder.user = "ev\x1b[2Jil";
    holder.command = "sh -c sleep 9 \x1b]0;PWNED\x07\x1b[2J\ncaf\xe9";
    gpu::ClaimMap claims{{uuid_for(0), holder}};
    const auto decision = run_select(machine, Request{}, claims);
    ASSERT_EQ(decision.verdicts[0].rejections.size(), 1U);
    EXPECT_EQ(decision.verdicts[0].rejections[0].reason,
              "claimed by ev?[2Jil (sh -c sleep 9 ?]0;PWNED??[2J?caf\xEF\xBF\xBD)");
    machine.gpus[1].error = "lost\x1b[31m";
    EXPECT_EQ(run_select(machine, Request{}, claims).verdicts[1].rejections.at(0).reason,
              "lost?[31m");
}

TEST(GpuList, RestrictsCandidatesInAnyForm) {
    auto machine = make_machine(4);
    Request request = want(1, 4);
    request.only = refs("GPU-13,19:00.0", false);
    const auto decision = run_select(machine, request);
    EXPECT_THAT(decision.chosen, ElementsAre(2U, 3U));
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("not in --gpu GPU-13,19:00.0"));
}

TEST(GpuList, NamingMoreThanTheMachineHasLeavesTheRestImpossible) {
    const auto machine = make_machine(2);
    Request request = want(2, 2);
    request.only = refs("1,7", false);
    EXPECT_EQ(run_select(machine, request).outcome, Decision::Outcome::impossible);
}

TEST(Visible, IndicesAndUuidsRestrictCandidates) {
    const auto machine = make_machine(4);
    Request request = want(1, 4);
    request.visible = parse_cuda_visible_devices("1," + uuid_for(3)).value();
    const auto decision = run_select(machine, request);
    EXPECT_THAT(decision.chosen, ElementsAre(1U, 3U));
    EXPECT_THAT(reasons(decision.verdicts[0]),
                ElementsAre("not in CUDA_VISIBLE_DEVICES=1," + uuid_for(3)));
}

TEST(Visible, SlurmGpusAreMatchedByMinorNumber) {
    auto machine = make_machine(4);
    for (unsigned i = 0; i < 4; ++i) {
        machine.gpus[i].minor_number = 3 - i; // minor numbers in the opposite order
    }
    Request request = want(1, 4);
    request.visible.restricted = true;
    request.visible.source = "SLURM_STEP_GPUS";
    request.visible.original = "0,1";
    for (const unsigned minor : {0U, 1U}) {
        GpuRef ref;
        ref.kind = GpuRef::Kind::minor_number;
        ref.index = minor;
        ref.text = std::to_string(minor);
        request.visible.refs.push_back(ref);
    }
    const auto decision = run_select(machine, request);
    EXPECT_THAT(decision.chosen, ElementsAre(2U, 3U)); // minors 1 and 0, not indices 0 and 1
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("not in SLURM_STEP_GPUS=0,1"));
}

TEST(Visible, UuidPrefix) {
    const auto machine = make_machine(4);
    Request request;
    request.visible = parse_cuda_visible_devices("GPU-12").value();
    EXPECT_THAT(run_select(machine, request).chosen, ElementsAre(2U));
}

TEST(Visible, StopAtInvalidHidesTheRest) {
    const auto machine = make_machine(4);
    Request request = want(1, 4);
    request.visible = parse_cuda_visible_devices("2,-1,3").value();
    EXPECT_THAT(run_select(machine, request).chosen, ElementsAre(2U));
}

TEST(Visible, EmptyOrNoDevFilesMakesEverythingImpossible) {
    const auto machine = make_machine(2);
    Request request;
    request.visible = parse_cuda_visible_devices("").value();
    auto decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_THAT(reasons(decision.verdicts[0]), ElementsAre("not in CUDA_VISIBLE_DEVICES=\"\""));

    request.visible = parse_cuda_visible_devices("NoDevFiles").value();
    decision = run_select(machine, request);
    EXPECT_EQ(decision.outcome, Decision::Outcome::impossible);
    EXPECT_THAT(reasons(decision.verdicts[1]),
                ElementsAre("not in CUDA_VISIBLE_DEVICES=NoDevFiles"));
}

TEST(Visible, UnsetRestrictsNothing) {
    const auto machine = make_machine(3);
    Request request = want(3, 3);
    request.visible = parse_cuda_visible_devices(std::nullopt).value();
    EXPECT_EQ(run_select(machine, request).outcome, Decision::Outcome::chosen);
}

// --- describe and validate -------------------------------------------------------------------

TEST(Describe, EligibleAndChosen) {
    GpuVerdict verdict;
    verdict.index = 2;
    EXPECT_EQ(describe(verdict), "GPU 2: eligible");
    verdict.chosen = true;
    EXPECT_EQ(describe(verdict), "GPU 2: chosen");
}

TEST(Describe, JoinsReasons) {
    GpuVerdict verdict;
    verdict.index = 2;
    verdict.rejections = {{"3.1 GiB free < 20 GiB", false}, {"util 87% > 10%", false}};
    EXPECT_EQ(describe(verdict), "GPU 2: 3.1 GiB free < 20 GiB; util 87% > 10%");
}

// What a launch asks NVML for (issue 9): each threshold needs its own figure, nothing else does.
TEST(FiguresFor, OnlyTheThresholdsFigures) {
    EXPECT_EQ(figures_for(Request{}), gpu::Figures::none());
    Request hot;
    hot.max_temperature_c = 80;
    hot.min_free_bytes = 1;  // memory is always read
    hot.require_idle = true; // so are the processes
    gpu::Figures temperature = gpu::Figures::none();
    temperature.temperature = true;
    EXPECT_EQ(figures_for(hot), temperature);
    Request all;
    all.max_utilization_percent = 10;
    all.max_temperature_c = 80;
    all.max_power_w = 250;
    gpu::Figures gauges = gpu::Figures::all();
    gauges.placement = false;       // never needed to choose
    gauges.process_details = false; // core::look reads them for claimed GPUs
    EXPECT_EQ(figures_for(all), gauges);
}

} // namespace
} // namespace withgpu::selection
