#include "report/waiting_report.hpp"

#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::report {

namespace {

bool same_reasons_but_ages(const selection::GpuVerdict& a, const selection::GpuVerdict& b) {
    return a.index == b.index &&
           std::equal(a.rejections.begin(),
                      a.rejections.end(),
                      b.rejections.begin(),
                      b.rejections.end(),
                      [](const selection::Rejection& x, const selection::Rejection& y) {
                          return x.reason_without_age() == y.reason_without_age();
                      });
}

} // namespace

WaitingState waiting_state(const queue::Turn& turn, unsigned gpus_needed) {
    WaitingState state;
    state.gpus_needed = gpus_needed;
    state.position = turn.position;
    for (const auto& verdict : turn.decision.verdicts) {
        const bool never = std::any_of(verdict.rejections.begin(),
                                       verdict.rejections.end(),
                                       [](const selection::Rejection& r) { return r.permanent; });
        if (never || verdict.rejections.empty()) {
            continue;
        }
        if (state.named.size() < max_gpus_named) {
            state.named.push_back(verdict);
        } else {
            ++state.more;
        }
    }
    return state;
}

std::string waiting_line(const WaitingState& state, std::optional<std::chrono::seconds> waited) {
    std::string line = fmt::format("waiting for {} GPU{}, {} in queue",
                                   state.gpus_needed,
                                   state.gpus_needed == 1 ? "" : "s",
                                   queue::ordinal(state.position));
    if (waited) {
        line += ", " + units::format_duration(*waited);
    }
    std::vector<std::string> reasons;
    reasons.reserve(state.named.size());
    for (const auto& verdict : state.named) {
        reasons.push_back(selection::describe(verdict));
    }
    if (!reasons.empty()) {
        line += ": " + fmt::format("{}", fmt::join(reasons, "; "));
    }
    if (state.more > 0) {
        line += fmt::format("; {} more", state.more);
    }
    return line;
}

bool same_but_ages(const WaitingState& a, const WaitingState& b) {
    return a.gpus_needed == b.gpus_needed && a.position == b.position && a.more == b.more &&
           std::equal(a.named.begin(),
                      a.named.end(),
                      b.named.begin(),
                      b.named.end(),
                      same_reasons_but_ages);
}

} // namespace withgpu::report
