#include "config/settings.hpp"

#include "config/launch.hpp"
#include "gpu/claim.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace withgpu::config {

namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using VK = ValueKind;

constexpr std::string_view k_choosing = "Choosing GPUs";
constexpr std::string_view k_waiting = "Waiting";
constexpr std::string_view k_guarding = "Guarding the job's GPUs";
constexpr std::string_view k_setup = "Setup";

// Administrator-only: set in the system file's [defaults], or for one run.
constexpr Places k_admin_or_run{true, false, false, true, true};
constexpr Places k_system_file_only{true, false, false, false, false};

unsigned number(const Parsed& v) {
    return std::get<unsigned>(v);
}
bool boolean(const Parsed& v) {
    return std::get<bool>(v);
}
const std::string& text(const Parsed& v) {
    return std::get<std::string>(v);
}
const std::vector<selection::GpuRef>& gpus(const Parsed& v) {
    return std::get<std::vector<selection::GpuRef>>(v);
}

// The table. Rows use designated initialisers: a field left out has the default of Setting.
std::vector<Setting> make_table() {
    return {
        {.name = "count",
         .kind = VK::whole_number,
         .builtin = "1",
         .minimum = 1,
         .short_flag = 'n',
         .group = k_choosing,
         .value_name = "N",
         .help = "Exactly N GPUs (default {default})",
         .example = "2",
         .toml_example = "2",
         .apply = [](const Parsed& v,
                     Launch& l) { l.request.min_gpus = l.request.max_gpus = number(v); }},
        {.name = "min_gpus",
         .kind = VK::whole_number,
         .minimum = 1,
         .group = k_choosing,
         .value_name = "N",
         .help = "At least N GPUs; --max-gpus defaults to N",
         .example = "2",
         .toml_example = "2",
         // As in the original with-gpu, max_gpus defaults to min_gpus (applied next).
         .apply = [](const Parsed& v,
                     Launch& l) { l.request.min_gpus = l.request.max_gpus = number(v); }},
        {.name = "max_gpus",
         .kind = VK::whole_number,
         .minimum = 1,
         .group = k_choosing,
         .value_name = "M",
         .help = "Take up to M GPUs if that many are free",
         .example = "4",
         .toml_example = "4",
         .apply = [](const Parsed& v, Launch& l) { l.request.max_gpus = number(v); }},
        {.name = "gpu",
         .kind = VK::gpu_list,
         .keyword = "gpus",
         .group = k_choosing,
         .value_name = "LIST",
         .help = "Only these GPUs: NVML indices, UUIDs or PCI bus ids",
         .example = "0,2",
         .toml_example = "[0, 2]",
         .apply = [](const Parsed& v, Launch& l) { l.request.only = gpus(v); }},
        {.name = "exclude",
         .kind = VK::gpu_list,
         .names_allowed = true,
         .group = k_choosing,
         .value_name = "LIST",
         .help = "Never these GPUs (as --gpu, or name:SUBSTRING)",
         .example = "0,name:T4",
         .toml_example = "[0, \"name:T4\"]",
         .apply = [](const Parsed& v, Launch& l) { l.request.exclude = gpus(v); }},
        {.name = "gpu_type",
         .kind = VK::text,
         .group = k_choosing,
         .value_name = "SUBSTR",
         .help = "Prefer GPUs whose name contains SUBSTR",
         .example = "A100",
         .toml_example = "\"A100\"",
         .apply = [](const Parsed& v, Launch& l) { l.request.gpu_type = text(v); }},
        {.name = "strict",
         .kind = VK::boolean,
         .group = k_choosing,
         .help = "With --gpu-type: use nothing else",
         .example = "true",
         .toml_example = "true",
         .apply = [](const Parsed& v, Launch& l) { l.request.strict_type = boolean(v); }},
        {.name = "min_memory",
         .kind = VK::size,
         .builtin = "2048",
         .group = k_choosing,
         .value_name = "SIZE",
         .help = "At least SIZE free (default {default} = MiB; 20G, 20GiB, 500MB; 0 = any)",
         .example = "20G",
         .toml_example = "\"20G\"",
         .apply = [](const Parsed& v,
                     Launch& l) { l.request.min_free_bytes = std::get<Bytes>(v).count; }},
        {.name = "max_util",
         .kind = VK::whole_number,
         .maximum = 100,
         .unit = '%',
         .group = k_choosing,
         .value_name = "PCT",
         .help = "At most PCT% GPU utilisation",
         .example = "10",
         .toml_example = "10",
         .apply = [](const Parsed& v,
                     Launch& l) { l.request.max_utilization_percent = number(v); }},
        {.name = "max_temp",
         .kind = VK::whole_number,
         .unit = 'C',
         .group = k_choosing,
         .value_name = "C",
         .help = "At most C degrees Celsius",
         .example = "80",
         .toml_example = "80",
         .apply = [](const Parsed& v, Launch& l) { l.request.max_temperature_c = number(v); }},
        {.name = "max_power",
         .kind = VK::whole_number,
         .unit = 'W',
         .group = k_choosing,
         .value_name = "W",
         .help = "At most W watts power draw",
         .example = "250",
         .toml_example = "250",
         .apply = [](const Parsed& v,
                     Launch& l) { l.request.max_power_w = static_cast<double>(number(v)); }},
        {.name = "require_idle",
         .kind = VK::boolean,
         .group = k_choosing,
         .help = "No compute or graphics process at all",
         .example = "true",
         .toml_example = "true",
         .apply = [](const Parsed& v, Launch& l) { l.request.require_idle = boolean(v); }},
        {.name = "wait",
         .kind = VK::boolean,
         .group = k_waiting,
         .help = "If nothing suitable is free, wait in a fair first-come-first-served queue",
         .example = "true",
         .toml_example = "true",
         .apply = [](const Parsed& v, Launch& l) { l.wait = boolean(v); }},
        {.name = "timeout",
         .kind = VK::duration,
         // Longer is surely a mistake (and would overflow clocks).
         .longest = hours(8760),
         .group = k_waiting,
         .value_name = "DURATION",
         .help = "Wait at most DURATION (90, 30s, 5m, 2h), then exit 124; implies --wait",
         .example = "5m",
         .toml_example = "\"5m\"",
         .apply =
             [](const Parsed& v, Launch& l) {
                 l.timeout = std::get<milliseconds>(v);
                 l.wait = true;
             }},
        {.name = "poll",
         .kind = VK::duration,
         .builtin = "2s",
         .shortest = milliseconds(10),
         .group = k_waiting,
         .value_name = "DURATION",
         .help = "While waiting, re-read GPU figures this often to notice GPUs freed by "
                 "programs outside with-gpu (default {default})",
         .example = "10s",
         .toml_example = "\"10s\"",
         .apply = [](const Parsed& v, Launch& l) { l.poll = std::get<milliseconds>(v); }},
        {.name = "hold",
         .kind = VK::hold_amount,
         .flag_alone = "0.25",
         .group = k_guarding,
         .value_name = "[=FRACTION|SIZE]",
         .help = "Hold memory on each claimed GPU (a quarter of its free memory, or "
                 "--hold=0.5, --hold=8G) until the job's own processes use it, so that "
                 "programs started without with-gpu find it taken",
         .example = "0.25",
         .toml_example = "\"0.25\"",
         .apply = [](const Parsed& v, Launch& l) { l.hold = std::get<HoldAmount>(v); }},
        {.name = "hold_timeout",
         .kind = VK::duration,
         .builtin = "5m",
         .longest = hours(8760),
         .group = k_guarding,
         .value_name = "DURATION",
         .help = "Let a hold go after DURATION even if the job has not used the GPU (default "
                 "{default})",
         .example = "10m",
         .toml_example = "\"10m\"",
         .apply = [](const Parsed& v, Launch& l) { l.hold_timeout = std::get<milliseconds>(v); }},
        {.name = "on_misplaced",
         .kind = VK::text,
         .builtin = "warn",
         .choices = "warn,kill",
         .group = k_guarding,
         .value_name = "warn|kill",
         .help = "When the job's processes use a GPU it did not claim: warn, or kill the job "
                 "(default {default})",
         .example = "kill",
         .toml_example = "\"kill\"",
         .apply = [](const Parsed& v, Launch& l) { l.kill_misplaced = text(v) == "kill"; }},
        {.name = "lock_dir",
         .kind = VK::absolute_path,
         .builtin = gpu::default_lock_dir,
         .allowed_in = k_admin_or_run,
         .group = k_setup,
         .value_name = "DIR",
         .help = "Shared claim directory (env {env}; default {default})",
         .example = "/var/lib/with-gpu",
         .toml_example = "\"/var/lib/with-gpu\"",
         .apply = [](const Parsed& v, Launch& l) { l.lock_dir = text(v); }},
        {.name = "banned",
         .kind = VK::gpu_list,
         .allowed_in = k_system_file_only,
         .names_allowed = true,
         .help = "GPUs nobody may use (system file only); always added to exclude",
         .example = "name:T4,3",
         .toml_example = "[\"name:T4\", 3]",
         .apply = [](const Parsed& v, Launch& l) { l.request.banned = gpus(v); }},
        {.name = "nvml_library",
         .kind = VK::text,
         .group = k_setup,
         .value_name = "PATH",
         .help = "Load NVML from PATH (env {env})",
         .example = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
         .toml_example = "\"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\"",
         .apply = [](const Parsed& v, Launch& l) { l.nvml_library = text(v); }},
    };
}

} // namespace

const std::vector<Setting>& settings() {
    static const std::vector<Setting> table = make_table();
    return table;
}

const Setting* find_setting(std::string_view name) {
    const auto& table = settings();
    const auto it =
        std::find_if(table.begin(), table.end(), [&](const Setting& s) { return s.name == name; });
    return it == table.end() ? nullptr : &*it;
}

const Setting* find_keyword(std::string_view word) {
    const auto& table = settings();
    const auto it = std::find_if(table.begin(), table.end(), [&](const Setting& s) {
        return s.allowed_in.command_line && keyword(s) == word;
    });
    return it == table.end() ? nullptr : &*it;
}

std::string env_var(const Setting& setting) {
    if (!setting.allowed_in.environment) {
        return {};
    }
    std::string name = "WITH_GPU_";
    for (const char c : setting.name) {
        name += text::to_upper(c);
    }
    return name;
}

std::string long_flag(const Setting& setting) {
    if (!setting.allowed_in.command_line) {
        return {};
    }
    std::string flag = "--";
    for (const char c : setting.name) {
        flag += c == '_' ? '-' : c;
    }
    return flag;
}

std::string flag_label(const Setting& setting) {
    std::string flag = long_flag(setting);
    if (setting.short_flag != '\0' && !flag.empty()) {
        return fmt::format("-{}/{}", setting.short_flag, flag);
    }
    return flag;
}

std::string_view keyword(const Setting& setting) {
    return setting.keyword.empty() ? setting.name : setting.keyword;
}

std::string help_text(const Setting& setting) {
    std::string out;
    std::string_view rest = setting.help;
    while (!rest.empty()) {
        const auto brace = rest.find('{');
        out += rest.substr(0, brace);
        if (brace == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(brace);
        if (rest.substr(0, 5) == "{env}") {
            out += env_var(setting);
            rest.remove_prefix(5);
        } else if (rest.substr(0, 9) == "{default}") {
            out += setting.builtin;
            rest.remove_prefix(9);
        } else {
            out += '{';
            rest.remove_prefix(1);
        }
    }
    return out;
}

} // namespace withgpu::config
