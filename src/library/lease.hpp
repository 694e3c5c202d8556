// The Lease's insides: the claim (its locked descriptors) and what was claimed.
#pragma once

#include "lock/claim.hpp"
#include "with_gpu/with_gpu.hpp"

#include <optional>
#include <vector>

namespace with_gpu {

struct Lease::State {
    std::optional<withgpu::lock::Claim> claim; // nullopt once released
    std::vector<Gpu> gpus;
};

Lease make_lease(std::unique_ptr<Lease::State> state);

} // namespace with_gpu
