#include "selection/select.hpp"

#include "util/strings.hpp"
#include "util/text.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace withgpu::selection {
namespace {

// Long command lines would drown the rest of a rejection line.
constexpr std::size_t max_command_chars = 60;

std::string join_refs(const std::vector<GpuRef>& refs) {
    std::string joined;
    for (const auto& ref : refs) {
        if (!joined.empty()) {
            joined += ',';
        }
        joined += ref.text;
    }
    return text::printable(joined);
}

bool matches_any(const std::vector<GpuRef>& refs, const gpu::GpuSnapshot& gpu) {
    return std::any_of(
        refs.begin(), refs.end(), [&gpu](const GpuRef& ref) { return matches(ref, gpu); });
}

// Two sizes for "a < b": rounded for reading, but never so rounded that they look equal.
std::pair<std::string, std::string> format_size_pair(std::uint64_t a, std::uint64_t b) {
    std::string left = units::format_size(a);
    std::string right = units::format_size(b);
    if (left != right) {
        return {std::move(left), std::move(right)};
    }
    if (a / units::mib != b / units::mib) {
        return {fmt::format("{} MiB", a / units::mib), fmt::format("{} MiB", b / units::mib)};
    }
    return {fmt::format("{} B", a), fmt::format("{} B", b)};
}

std::pair<std::string, std::string> format_watts_pair(double a, double b) {
    std::string left = fmt::format("{:.0f} W", a);
    std::string right = fmt::format("{:.0f} W", b);
    if (left != right) {
        return {std::move(left), std::move(right)};
    }
    return {fmt::format("{:.1f} W", a), fmt::format("{:.1f} W", b)};
}

Rejection claim_rejection(const gpu::ClaimHolder& holder, std::int64_t now_unix) {
    std::string reason = "claimed";
    if (holder.user) {
        reason += fmt::format(" by {}", text::printable(*holder.user));
    }
    std::vector<std::string> details;
    if (holder.pid) {
        details.push_back(fmt::format("pid {}", *holder.pid));
    }
    if (holder.command && !holder.command->empty()) {
        std::string command = *holder.command;
        if (command.size() > max_command_chars) {
            command = command.substr(0, max_command_chars - 3) + "...";
        }
        details.push_back(text::printable(command));
    }
    if (!details.empty()) {
        reason += fmt::format(" ({})", fmt::join(details, ", "));
    }
    Rejection rejection{std::move(reason), false};
    if (holder.since_unix) {
        const std::string age = fmt::format(
            " for {}", units::format_duration(units::elapsed(*holder.since_unix, now_unix)));
        rejection.reason += age;
        rejection.age_bytes = age.size();
    }
    return rejection;
}

void check_identity(const gpu::GpuSnapshot& gpu,
                    const Request& request,
                    std::vector<Rejection>& rejections) {
    if (!request.only.empty() && !matches_any(request.only, gpu)) {
        rejections.push_back({fmt::format("not in --gpu {}", join_refs(request.only)), true});
    }
    const bool banned = matches_any(request.banned, gpu);
    if (banned) {
        rejections.push_back({"banned by the system configuration", true});
    }
    for (const auto& ref : request.exclude) {
        if (!banned && matches(ref, gpu)) {
            rejections.push_back(
                {fmt::format("excluded by --exclude {}", text::printable(ref.text)), true});
            break;
        }
    }
    if (request.visible.restricted && !matches_any(request.visible.refs, gpu)) {
        const std::string shown =
            request.visible.original.empty() ? "\"\"" : text::printable(request.visible.original);
        rejections.push_back({fmt::format("not in {}={}", request.visible.source, shown), true});
    }
    if (request.gpu_type && request.strict_type && !text::icontains(gpu.name, *request.gpu_type)) {
        rejections.push_back(
            {fmt::format("not a {} (--gpu-type, --strict)", text::printable(*request.gpu_type)),
             true});
    }
}

void check_metrics(const gpu::GpuSnapshot& gpu,
                   const Request& request,
                   const gpu::ClaimMap& claims,
                   const ReservedMap& reserved,
                   std::int64_t now_unix,
                   std::vector<Rejection>& rejections) {
    bool total_too_small = false;
    if (request.min_free_bytes && gpu.memory_total_bytes) {
        // The most that can ever be free: the driver's reserved memory is never released.
        const std::uint64_t kept =
            std::min(gpu.memory_reserved_bytes.value_or(0), *gpu.memory_total_bytes);
        const std::uint64_t usable = *gpu.memory_total_bytes - kept;
        if (usable < *request.min_free_bytes) {
            if (kept == 0 || *gpu.memory_total_bytes < *request.min_free_bytes) {
                const auto [total, wanted] =
                    format_size_pair(*gpu.memory_total_bytes, *request.min_free_bytes);
                rejections.push_back({fmt::format("{} total < {} wanted", total, wanted), true});
            } else {
                const auto [most, wanted] = format_size_pair(usable, *request.min_free_bytes);
                rejections.push_back({fmt::format("at most {} free ({} total, {} reserved by "
                                                  "the driver) < {} wanted",
                                                  most,
                                                  units::format_size(*gpu.memory_total_bytes),
                                                  units::format_size(kept),
                                                  wanted),
                                      true});
            }
            total_too_small = true;
        }
    }

    if (!gpu.uuid.empty()) {
        if (const auto claim = claims.find(gpu.uuid); claim != claims.end()) {
            rejections.push_back(claim_rejection(claim->second, now_unix));
            for (const auto& p : gpu.processes.value_or(std::vector<gpu::Process>{})) {
                if (p.squatter) { // core/ marks them: not the claim holder's family
                    rejections.push_back(
                        {fmt::format("squatter pid {} ({}: {}) uses it besides the claim",
                                     p.pid,
                                     text::printable(p.user.value_or("?")),
                                     text::printable(p.command.value_or("?"))),
                         false});
                }
            }
        }
        if (const auto wanted = reserved.find(gpu.uuid); wanted != reserved.end()) {
            rejections.push_back({wanted->second, false});
        }
    }

    // Free memory below a too-small total says nothing new.
    if (request.min_free_bytes && !total_too_small) {
        if (!gpu.memory_free_bytes) {
            rejections.push_back({"free memory unknown", false});
        } else if (*gpu.memory_free_bytes < *request.min_free_bytes) {
            const auto [free, wanted] =
                format_size_pair(*gpu.memory_free_bytes, *request.min_free_bytes);
            rejections.push_back({fmt::format("{} free < {}", free, wanted), false});
        }
    }
    if (request.max_utilization_percent) {
        if (!gpu.utilization_percent) {
            rejections.push_back({"utilisation unknown", false});
        } else if (*gpu.utilization_percent > *request.max_utilization_percent) {
            rejections.push_back({fmt::format("util {}% > {}%",
                                              *gpu.utilization_percent,
                                              *request.max_utilization_percent),
                                  false});
        }
    }
    if (request.max_temperature_c) {
        if (!gpu.temperature_c) {
            rejections.push_back({"temperature unknown", false});
        } else if (*gpu.temperature_c > *request.max_temperature_c) {
            rejections.push_back(
                {fmt::format("{}°C > {}°C", *gpu.temperature_c, *request.max_temperature_c),
                 false});
        }
    }
    if (request.max_power_w) {
        if (!gpu.power_w) {
            rejections.push_back({"power draw unknown", false});
        } else if (*gpu.power_w > *request.max_power_w) {
            const auto [draw, limit] = format_watts_pair(*gpu.power_w, *request.max_power_w);
            rejections.push_back({fmt::format("{} > {}", draw, limit), false});
        }
    }
    if (request.require_idle) {
        if (!gpu.processes) {
            rejections.push_back({"process list unknown", false});
        } else if (!gpu.processes->empty()) {
            const std::size_t count = gpu.processes->size();
            rejections.push_back(
                {fmt::format("{} process{} running (require-idle)", count, count == 1 ? "" : "es"),
                 false});
        }
    }
}

// Strict weak order over eligible GPUs: best first.
bool ranks_before(const gpu::GpuSnapshot& a,
                  bool a_preferred,
                  const gpu::GpuSnapshot& b,
                  bool b_preferred) {
    if (a_preferred != b_preferred) {
        return a_preferred;
    }
    if (a.memory_free_bytes.has_value() != b.memory_free_bytes.has_value()) {
        return a.memory_free_bytes.has_value();
    }
    if (a.memory_free_bytes && *a.memory_free_bytes != *b.memory_free_bytes) {
        return *a.memory_free_bytes > *b.memory_free_bytes;
    }
    if (a.processes.has_value() != b.processes.has_value()) {
        return a.processes.has_value();
    }
    if (a.processes && a.processes->size() != b.processes->size()) {
        return a.processes->size() < b.processes->size();
    }
    return a.index < b.index;
}

std::string gpus(unsigned count) {
    return fmt::format("{} GPU{}", count, count == 1 ? "" : "s");
}

} // namespace

Decision select(const gpu::MachineSnapshot& machine,
                const Request& request,
                const gpu::ClaimMap& claims,
                std::int64_t now_unix,
                const ReservedMap& reserved) {
    Decision decision;
    decision.verdicts.reserve(machine.gpus.size());

    unsigned could_qualify = 0;
    std::vector<std::size_t> eligible; // positions in machine.gpus
    for (std::size_t i = 0; i < machine.gpus.size(); ++i) {
        const auto& gpu = machine.gpus[i];
        GpuVerdict verdict;
        verdict.index = gpu.index;
        verdict.preferred = request.gpu_type && text::icontains(gpu.name, *request.gpu_type);

        if (gpu.error) {
            verdict.rejections.push_back({text::printable(*gpu.error), true});
        }
        check_identity(gpu, request, verdict.rejections);
        // A GPU that could not be read has no metrics worth judging.
        if (!gpu.error) {
            check_metrics(gpu, request, claims, reserved, now_unix, verdict.rejections);
        }

        const bool permanent = std::any_of(verdict.rejections.begin(),
                                           verdict.rejections.end(),
                                           [](const Rejection& r) { return r.permanent; });
        if (!permanent) {
            ++could_qualify;
        }
        if (verdict.rejections.empty()) {
            eligible.push_back(i);
        }
        decision.verdicts.push_back(std::move(verdict));
    }

    std::sort(eligible.begin(), eligible.end(), [&](std::size_t a, std::size_t b) {
        return ranks_before(machine.gpus[a],
                            decision.verdicts[a].preferred,
                            machine.gpus[b],
                            decision.verdicts[b].preferred);
    });

    const auto eligible_count = static_cast<unsigned>(eligible.size());
    if (could_qualify < request.min_gpus) {
        decision.outcome = Decision::Outcome::impossible;
        decision.summary =
            could_qualify == 0
                ? fmt::format("need {}, none could ever qualify", gpus(request.min_gpus))
                : fmt::format(
                      "need {}, only {} could ever qualify", gpus(request.min_gpus), could_qualify);
        return decision;
    }
    if (eligible_count < request.min_gpus) {
        decision.outcome = Decision::Outcome::none_now;
        decision.summary = eligible_count == 0
                               ? fmt::format("need {}, none eligible now", gpus(request.min_gpus))
                               : fmt::format("need {}, only {} eligible now",
                                             gpus(request.min_gpus),
                                             eligible_count);
        return decision;
    }

    const unsigned take = std::min(std::max(request.max_gpus, request.min_gpus), eligible_count);
    std::vector<std::string> names;
    for (unsigned k = 0; k < take; ++k) {
        const std::size_t position = eligible[k];
        decision.verdicts[position].chosen = true;
        decision.chosen.push_back(machine.gpus[position].index);
        names.push_back(fmt::format("GPU {}", machine.gpus[position].index));
    }
    decision.outcome = Decision::Outcome::chosen;
    decision.summary = names.empty() ? std::string("chose no GPU")
                                     : fmt::format("chose {}", fmt::join(names, ", "));
    return decision;
}

gpu::Figures figures_for(const Request& request) {
    gpu::Figures figures = gpu::Figures::none();
    figures.utilization = request.max_utilization_percent.has_value();
    figures.temperature = request.max_temperature_c.has_value();
    figures.power = request.max_power_w.has_value();
    return figures;
}

std::string describe(const GpuVerdict& verdict) {
    if (verdict.rejections.empty()) {
        return fmt::format("GPU {}: {}", verdict.index, verdict.chosen ? "chosen" : "eligible");
    }
    std::vector<std::string_view> reasons;
    reasons.reserve(verdict.rejections.size());
    for (const auto& rejection : verdict.rejections) {
        reasons.emplace_back(rejection.reason);
    }
    return fmt::format("GPU {}: {}", verdict.index, fmt::join(reasons, "; "));
}

} // namespace withgpu::selection
