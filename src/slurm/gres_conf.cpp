#include "slurm/gres_conf.hpp"

#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <vector>

namespace withgpu::slurm {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

} // namespace

std::string gres_type(std::string_view model_name) {
    const std::string lower = text::to_lower(model_name);
    std::string_view rest = lower;
    for (const std::string_view vendor : {"nvidia ", "tesla "}) {
        if (starts_with(rest, vendor)) {
            rest.remove_prefix(vendor.size());
        }
    }
    std::string type;
    for (const char c : rest) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        // ':' and ',' separate fields in slurm.conf's Gres=; spaces end a gres.conf value.
        const char kept = plain ? c : '_';
        if (kept == '_' && (type.empty() || type.back() == '_')) {
            continue;
        }
        type += kept;
    }
    while (!type.empty() && type.back() == '_') {
        type.pop_back();
    }
    return type.empty() ? std::string("gpu") : type;
}

std::string cpu_ranges(const std::vector<unsigned>& sorted_ids) {
    std::string text;
    for (std::size_t i = 0; i < sorted_ids.size();) {
        std::size_t j = i;
        while (j + 1 < sorted_ids.size() && sorted_ids[j + 1] == sorted_ids[j] + 1) {
            ++j;
        }
        text += text.empty() ? "" : ",";
        text += j == i ? fmt::format("{}", sorted_ids[i])
                       : fmt::format("{}-{}", sorted_ids[i], sorted_ids[j]);
        i = j + 1;
    }
    return text;
}

Result<std::string> gres_conf(const gpu::MachineSnapshot& machine,
                              std::string_view node_name,
                              const std::map<unsigned, unsigned>& core_of_cpu) {
    std::vector<const gpu::GpuSnapshot*> described;
    std::string left_out;
    for (const auto& g : machine.gpus) {
        if (g.error || !g.minor_number) {
            left_out += fmt::format("# left out: GPU {} ({}): {}\n",
                                    g.index,
                                    g.uuid.empty() ? "no UUID" : g.uuid,
                                    g.error ? *g.error : "NVML gives no minor number");
            continue;
        }
        described.push_back(&g);
    }
    if (described.empty()) {
        return fail(ErrorKind::failed,
                    "no GPU of this machine can be described for gres.conf",
                    machine.gpus.empty() ? "NVML shows no GPU on this machine"
                                         : "see with-gpu --status for what is wrong with them");
    }
    // NVML indices are the PCI order; SLURM numbers the GPUs of a job in gres.conf order.
    const bool minor_order_is_pci_order =
        std::is_sorted(described.begin(), described.end(), [](const auto* a, const auto* b) {
            return *a->minor_number < *b->minor_number;
        });
    std::sort(described.begin(), described.end(), [](const auto* a, const auto* b) {
        return *a->minor_number < *b->minor_number;
    });

    std::string text = fmt::format(
        "# gres.conf for {}, written by with-gpu --slurm-gres-conf from NVML{}.\n"
        "# One line per GPU: File= is its device file, Cores= the CPUs close to it.\n",
        node_name,
        machine.driver_version.empty() ? "" : " (driver " + machine.driver_version + ")");
    std::vector<std::pair<std::string, unsigned>> counts; // type -> GPUs, in first-seen order
    for (const auto* g : described) {
        const std::string type = gres_type(g->name);
        text += fmt::format("Name=gpu Type={} File=/dev/nvidia{}", type, *g->minor_number);
        if (g->local_cpus && !g->local_cpus->empty()) {
            std::set<unsigned> cores;
            for (const unsigned cpu : *g->local_cpus) {
                const auto it = core_of_cpu.find(cpu);
                cores.insert(it == core_of_cpu.end() ? cpu : it->second);
            }
            text += " Cores=" + cpu_ranges({cores.begin(), cores.end()});
        }
        text += '\n';
        const auto it = std::find_if(
            counts.begin(), counts.end(), [&](const auto& entry) { return entry.first == type; });
        if (it == counts.end()) {
            counts.emplace_back(type, 1U);
        } else {
            ++it->second;
        }
    }
    text += left_out;
    if (!minor_order_is_pci_order) {
        text += "# warning: on this machine the device minor numbers do not follow the PCI bus\n"
                "# order. Inside a job with ConstrainDevices=yes, CUDA numbers the job's GPUs in\n"
                "# PCI order while SLURM numbers them in the order above, so CUDA_VISIBLE_DEVICES\n"
                "# ids may name other GPUs than SLURM meant. Use AutoDetect=nvml instead of these\n"
                "# lines (docs/slurm.md, \"Device order\").\n";
    }
    std::string gres;
    for (const auto& [type, count] : counts) {
        gres += fmt::format("{}gpu:{}:{}", gres.empty() ? "" : ",", type, count);
    }
    text += fmt::format("#\n"
                        "# In slurm.conf (keep the node's other settings, e.g. CPUs=):\n"
                        "# GresTypes=gpu\n"
                        "# NodeName={} Gres={}\n",
                        node_name,
                        gres);
    return text;
}

} // namespace withgpu::slurm
