#include "report/decision_report.hpp"

#include "report/json_text.hpp"
#include "util/text.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

namespace withgpu::report {

namespace {

std::string reasons_text(const selection::GpuVerdict& verdict) {
    std::string text;
    for (const auto& r : verdict.rejections) {
        text += (text.empty() ? "" : "; ") + r.reason;
    }
    return text;
}

} // namespace

const char* outcome_name(selection::Decision::Outcome outcome) {
    switch (outcome) {
    case selection::Decision::Outcome::chosen:
        return "chosen";
    case selection::Decision::Outcome::none_now:
        return "none_now";
    case selection::Decision::Outcome::impossible:
        return "impossible";
    }
    return "none_now";
}

nlohmann::json decision_json(const gpu::MachineSnapshot& machine,
                             const selection::Decision& decision) {
    nlohmann::json gpus = nlohmann::json::array();
    for (const auto& v : decision.verdicts) {
        const gpu::GpuSnapshot* g = machine.find(v.index);
        nlohmann::json reasons = nlohmann::json::array();
        for (const auto& r : v.rejections) {
            reasons.push_back({{"reason", text_json(r.reason)}, {"permanent", r.permanent}});
        }
        gpus.push_back({
            {"index", v.index},
            {"uuid", text_json(g != nullptr ? g->uuid : "")},
            {"name", text_json(g != nullptr ? g->name : "")},
            {"eligible", v.rejections.empty()},
            {"preferred", v.preferred},
            {"chosen", v.chosen},
            {"reasons", std::move(reasons)},
        });
    }
    return {
        {"version", 1},
        {"outcome", outcome_name(decision.outcome)},
        {"summary", text_json(decision.summary)},
        {"chosen", decision.chosen},
        {"gpus", std::move(gpus)},
    };
}

std::string decision_text(const gpu::MachineSnapshot& machine,
                          const selection::Decision& decision) {
    std::string out;
    for (const auto& v : decision.verdicts) {
        const gpu::GpuSnapshot* g = machine.find(v.index);
        std::string name = g != nullptr ? text::printable(g->name) : "";
        std::string free = g != nullptr && g->memory_free_bytes
                               ? units::format_size(*g->memory_free_bytes) + " free"
                               : "";
        std::string verdict = v.chosen               ? "chosen"
                              : v.rejections.empty() ? "eligible"
                                                     : "rejected: " + reasons_text(v);
        out += fmt::format("GPU {:<2} {:<24} {:>14}  {}\n", v.index, name, free, verdict);
    }
    out += decision.summary + "\n";
    return out;
}

std::string rejection_lines(const selection::Decision& decision) {
    std::string out;
    for (const auto& v : decision.verdicts) {
        if (!v.rejections.empty()) {
            out += "  " + selection::describe(v) + "\n";
        }
    }
    return out;
}

} // namespace withgpu::report
