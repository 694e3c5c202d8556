#include "slurm/allocation.hpp"

#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

namespace withgpu::slurm {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> items;
    while (true) {
        const auto at = text.find(separator);
        items.push_back(text::trim(text.substr(0, at)));
        if (at == std::string_view::npos) {
            return items;
        }
        text.remove_prefix(at + 1);
    }
}

std::optional<unsigned> number(std::string_view text) {
    unsigned value = 0;
    const auto* last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(text.data(), last, value);
    if (text.empty() || ec != std::errc{} || end != last) {
        return std::nullopt;
    }
    return value;
}

constexpr unsigned max_ids = 4096; // far more GPUs than a node has; bounds a range like 0-4e9

} // namespace

std::string Allocation::describe() const {
    return step_id ? fmt::format("job {} step {}", job_id, *step_id)
                   : fmt::format("job {}", job_id);
}

std::optional<std::string> Allocation::cuda_id_of(unsigned minor_number) const {
    const auto it = std::find(minor_numbers.begin(), minor_numbers.end(), minor_number);
    if (it == minor_numbers.end()) {
        return std::nullopt;
    }
    return cuda_ids.at(static_cast<std::size_t>(it - minor_numbers.begin()));
}

Result<std::vector<unsigned>> parse_gpu_ids(std::string_view text, std::string_view name) {
    std::vector<unsigned> ids;
    text = text::trim(text);
    if (text.empty()) {
        return ids;
    }
    const auto bad = [&](std::string_view item) {
        return fail(ErrorKind::usage,
                    fmt::format("{}=\"{}\": \"{}\" is not a GPU id", name, text, item),
                    "SLURM sets this to GPU ids such as 0,1 (gres.conf File=/dev/nvidiaN "
                    "numbers); unset it or leave it as SLURM set it");
    };
    for (const auto item : split(text, ',')) {
        const auto dash = item.find('-');
        const auto first = number(item.substr(0, dash));
        const auto last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
        if (!first || !last || *last < *first || *last - *first >= max_ids) {
            return bad(item);
        }
        for (unsigned id = *first; id <= *last && ids.size() <= max_ids; ++id) {
            if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
                return bad(item); // SLURM never names a GPU twice
            }
            ids.push_back(id);
        }
        if (ids.size() > max_ids) {
            return bad(item);
        }
    }
    return ids;
}

Result<std::optional<Allocation>> read_allocation(const Variables& variables) {
    if (!variables.job_id || text::trim(*variables.job_id).empty()) {
        return std::optional<Allocation>();
    }
    Allocation allocation;
    allocation.job_id = std::string(text::trim(*variables.job_id));
    if (variables.step_id && !text::trim(*variables.step_id).empty()) {
        allocation.step_id = std::string(text::trim(*variables.step_id));
    }
    if (variables.step_gpus) {
        allocation.source = "SLURM_STEP_GPUS";
        allocation.source_value = *variables.step_gpus;
    } else if (variables.job_gpus) {
        allocation.source = "SLURM_JOB_GPUS";
        allocation.source_value = *variables.job_gpus;
    }
    if (!allocation.source.empty()) {
        auto ids = parse_gpu_ids(allocation.source_value, allocation.source);
        if (!ids) {
            return tl::unexpected(std::move(ids.error()));
        }
        allocation.minor_numbers = std::move(*ids);
    }

    if (variables.gpus_on_node) {
        const auto on_node = number(text::trim(*variables.gpus_on_node));
        if (!on_node) {
            return fail(ErrorKind::usage,
                        fmt::format("SLURM_GPUS_ON_NODE=\"{}\" is not a number of GPUs",
                                    *variables.gpus_on_node),
                        "leave it as SLURM set it");
        }
        if (*on_node > 0 && allocation.source.empty()) {
            return fail(ErrorKind::usage,
                        fmt::format("SLURM_GPUS_ON_NODE={} but neither SLURM_STEP_GPUS nor "
                                    "SLURM_JOB_GPUS says which GPUs",
                                    *on_node),
                        "with-gpu needs SLURM's GPU ids to find the allocated GPUs; leave "
                        "SLURM_*_GPUS as SLURM set them");
        }
    }

    if (allocation.minor_numbers.empty()) {
        allocation.source.clear(); // "holds no GPU", whatever the (empty) list was called
        return std::optional<Allocation>(std::move(allocation));
    }
    const std::string cuda = variables.cuda_visible_devices.value_or("");
    std::vector<std::string> cuda_ids;
    for (const auto item : split(cuda, ',')) {
        if (!item.empty()) {
            cuda_ids.emplace_back(item);
        }
    }
    if (cuda_ids.size() != allocation.minor_numbers.size()) {
        return fail(ErrorKind::usage,
                    fmt::format("{}={} names {} GPU(s) but CUDA_VISIBLE_DEVICES={} does not "
                                "have one id for each: with-gpu cannot tell under which id "
                                "the job's CUDA sees each GPU",
                                allocation.source,
                                allocation.source_value,
                                allocation.minor_numbers.size(),
                                variables.cuda_visible_devices ? "\"" + cuda + "\""
                                                               : std::string("(unset)")),
                    "inside a SLURM allocation leave CUDA_VISIBLE_DEVICES as SLURM set it; "
                    "with-gpu sets it for the command it runs");
    }
    allocation.cuda_ids = std::move(cuda_ids);
    return std::optional<Allocation>(std::move(allocation));
}

std::vector<unsigned> allocated_indices(const Allocation& allocation,
                                        const gpu::MachineSnapshot& machine) {
    std::vector<unsigned> indices;
    for (const unsigned minor : allocation.minor_numbers) {
        for (const auto& g : machine.gpus) {
            if (g.minor_number == minor) {
                indices.push_back(g.index);
                break;
            }
        }
    }
    return indices;
}

std::string allocation_text(const Allocation& allocation, const gpu::MachineSnapshot& machine) {
    if (allocation.minor_numbers.empty()) {
        return fmt::format("SLURM {} holds no GPU; with-gpu will not run commands here\n",
                           allocation.describe());
    }
    const auto indices = allocated_indices(allocation, machine);
    std::string gpus;
    for (const unsigned index : indices) {
        gpus += fmt::format("{}GPU {}", gpus.empty() ? "" : ", ", index);
    }
    const std::size_t missing = allocation.minor_numbers.size() - indices.size();
    return fmt::format("SLURM {} holds {} ({}={}){}; with-gpu uses only these\n",
                       allocation.describe(),
                       gpus.empty() ? std::string("no GPU that NVML shows") : gpus,
                       allocation.source,
                       allocation.source_value,
                       missing == 0
                           ? std::string()
                           : fmt::format(", {} id(s) match no GPU's minor number", missing));
}

nlohmann::json allocation_json(const Allocation& allocation, const gpu::MachineSnapshot& machine) {
    return {
        {"job_id", allocation.job_id},
        {"step_id", allocation.step_id ? nlohmann::json(*allocation.step_id) : nullptr},
        {"source",
         allocation.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(allocation.source)},
        {"gpu_ids", allocation.minor_numbers},
        {"gpus", allocated_indices(allocation, machine)},
    };
}

JobPresence job_presence(int exit_status, std::string_view output) {
    if (output.find("Invalid job id") != std::string_view::npos) {
        return JobPresence::gone;
    }
    if (exit_status != 0) {
        return JobPresence::unknown;
    }
    constexpr std::string_view key = "JobState=";
    std::size_t at = output.find(key);
    while (at != std::string_view::npos && at > 0 && output[at - 1] != ' ' &&
           output[at - 1] != '\n' && output[at - 1] != '\t') {
        at = output.find(key, at + 1); // e.g. not "OrigJobState="
    }
    if (at == std::string_view::npos) {
        return JobPresence::unknown;
    }
    std::string_view state = output.substr(at + key.size());
    state = state.substr(0, state.find_first_of(" \t\r\n"));
    constexpr std::array<std::string_view, 10> finished{"COMPLETED",
                                                        "CANCELLED",
                                                        "FAILED",
                                                        "TIMEOUT",
                                                        "NODE_FAIL",
                                                        "PREEMPTED",
                                                        "BOOT_FAIL",
                                                        "DEADLINE",
                                                        "OUT_OF_MEMORY",
                                                        "REVOKED"};
    if (state.empty()) {
        return JobPresence::unknown;
    }
    return std::find(finished.begin(), finished.end(), state) != finished.end()
               ? JobPresence::gone
               : JobPresence::alive;
}

} // namespace withgpu::slurm
