#include "library/lease.hpp"

namespace with_gpu {

Lease make_lease(std::unique_ptr<Lease::State> state) {
    return Lease(std::move(state));
}

Lease::Lease(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Lease::Lease(Lease&&) noexcept = default;
Lease& Lease::operator=(Lease&&) noexcept = default;
Lease::~Lease() = default; // closing the descriptors ends the claim

const std::vector<Gpu>& Lease::gpus() const noexcept {
    static const std::vector<Gpu> none;
    return m_state ? m_state->gpus : none;
}

std::vector<unsigned> Lease::indices() const {
    std::vector<unsigned> out;
    for (const auto& gpu : gpus()) {
        out.push_back(gpu.index);
    }
    return out;
}

std::vector<std::string> Lease::uuids() const {
    std::vector<std::string> out;
    for (const auto& gpu : gpus()) {
        out.push_back(gpu.uuid);
    }
    return out;
}

std::vector<std::string> Lease::cuda_ids() const {
    std::vector<std::string> out;
    for (const auto& gpu : gpus()) {
        out.push_back(gpu.cuda_id);
    }
    return out;
}

bool Lease::held() const noexcept {
    return m_state && m_state->claim.has_value();
}

void Lease::release() noexcept {
    if (m_state) {
        m_state->claim.reset();
    }
}

} // namespace with_gpu
