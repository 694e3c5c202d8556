#include "run/job_environment.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace withgpu::run {

std::vector<std::string> job_environment(const std::vector<std::string>& parent,
                                         const std::vector<ChosenGpu>& gpus) {
    std::string indices;
    std::string uuids;
    for (const auto& g : gpus) {
        if (!indices.empty()) {
            indices += ',';
            uuids += ',';
        }
        indices += g.visible_id.empty() ? std::to_string(g.index) : g.visible_id;
        uuids += g.uuid;
    }
    const std::array<std::pair<std::string_view, std::string>, 3> ours{{
        {"CUDA_VISIBLE_DEVICES", indices},
        {"CUDA_DEVICE_ORDER", "PCI_BUS_ID"},
        {"WITH_GPU_UUIDS", uuids},
    }};

    std::vector<std::string> env;
    env.reserve(parent.size() + ours.size());
    for (const auto& entry : parent) {
        const std::string_view name = std::string_view(entry).substr(0, entry.find('='));
        const bool replaced = std::any_of(
            ours.begin(), ours.end(), [&](const auto& var) { return var.first == name; });
        if (!replaced) {
            env.push_back(entry);
        }
    }
    for (const auto& [name, value] : ours) {
        env.push_back(std::string(name) + "=" + value);
    }
    return env;
}

} // namespace withgpu::run
