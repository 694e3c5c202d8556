#include "report/waiting_report.hpp"

#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::report {

namespace {

constexpr std::size_t max_gpus_named = 4;

} // namespace

std::string
waiting_line(const queue::Turn& turn, unsigned gpus_needed, std::chrono::seconds waited) {
    std::string line = fmt::format("waiting for {} GPU{}, {} in queue",
                                   gpus_needed,
                                   gpus_needed == 1 ? "" : "s",
                                   queue::ordinal(turn.position));
    if (waited.count() >= 0) {
        line += ", " + units::format_duration(waited);
    }
    std::vector<std::string> reasons;
    std::size_t more = 0;
    for (const auto& verdict : turn.decision.verdicts) {
        const bool never = std::any_of(verdict.rejections.begin(),
                                       verdict.rejections.end(),
                                       [](const selection::Rejection& r) { return r.permanent; });
        if (never || verdict.rejections.empty()) {
            continue;
        }
        if (reasons.size() < max_gpus_named) {
            reasons.push_back(selection::describe(verdict));
        } else {
            ++more;
        }
    }
    if (!reasons.empty()) {
        line += ": " + fmt::format("{}", fmt::join(reasons, "; "));
    }
    if (more > 0) {
        line += fmt::format("; {} more", more);
    }
    return line;
}

} // namespace withgpu::report
