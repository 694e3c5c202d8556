// `with-gpu --slurm-gres-conf`: this machine's GPUs as SLURM's gres.conf lines, plus the
// slurm.conf lines that must match them (docs/slurm.md). Pure code over a snapshot.
#pragma once

#include "gpu/snapshot.hpp"
#include "util/error.hpp"

#include <map>
#include <string>
#include <string_view>

namespace withgpu::slurm {

// The gres.conf Type= for a model name: "NVIDIA A100-SXM4-80GB" -> "a100-sxm4-80gb",
// "Tesla T4" -> "t4", "NVIDIA GeForce RTX 4090" -> "geforce_rtx_4090".
[[nodiscard]] std::string gres_type(std::string_view model_name);

// "0-3,8,10-11"
[[nodiscard]] std::string cpu_ranges(const std::vector<unsigned>& sorted_ids);

// A gres.conf, one `Name=gpu Type=<type> File=/dev/nvidiaN [Cores=<list>]` line per GPU in
// minor-number order, then, as comments, the slurm.conf lines for `node_name`
// (`GresTypes=gpu` and `NodeName=<node> Gres=gpu:<type>:<n>[,...]`). `core_of_cpu` maps a
// logical CPU to SLURM's core index (hardware threads of one core share it); without an entry
// for a CPU the CPU number is used. GPUs that cannot be described (lost, no minor number) are
// named in a comment and left out. Error (ErrorKind::failed) when no GPU is left.
[[nodiscard]] Result<std::string> gres_conf(const gpu::MachineSnapshot& machine,
                                            std::string_view node_name,
                                            const std::map<unsigned, unsigned>& core_of_cpu);

} // namespace withgpu::slurm
