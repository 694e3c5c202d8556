#include "machine.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>
#include <set>
#include <span>
#include <stdexcept>
#include <system_error>

namespace withgpu::sim {
namespace {

using nlohmann::json;

struct CodeInfo {
    int code;
    std::string_view name; // NVML: nvml.h's name without NVML_ERROR_; CUDA: cuda.h's full name
    const char* message;   // what nvmlErrorString (or cuGetErrorString) says
};

constexpr std::array<CodeInfo, 32> code_table{{
    {0, "SUCCESS", "Success"},
    {1, "UNINITIALIZED", "Uninitialized"},
    {2, "INVALID_ARGUMENT", "Invalid Argument"},
    {3, "NOT_SUPPORTED", "Not Supported"},
    {4, "NO_PERMISSION", "Insufficient Permissions"},
    {5, "ALREADY_INITIALIZED", "Already Initialized"},
    {6, "NOT_FOUND", "Not Found"},
    {7, "INSUFFICIENT_SIZE", "Insufficient Size"},
    {8, "INSUFFICIENT_POWER", "Insufficient External Power"},
    {9, "DRIVER_NOT_LOADED", "Driver Not Loaded"},
    {10, "TIMEOUT", "Timeout"},
    {11, "IRQ_ISSUE", "Interrupt Request Issue"},
    {12, "LIBRARY_NOT_FOUND", "NVML Shared Library Not Found"},
    {13, "FUNCTION_NOT_FOUND", "Function Not Found"},
    {14, "CORRUPTED_INFOROM", "Corrupted infoROM"},
    {15, "GPU_IS_LOST", "GPU is lost"},
    {16, "RESET_REQUIRED", "GPU requires restart"},
    {17, "OPERATING_SYSTEM", "The operating system has blocked the request."},
    {18, "LIB_RM_VERSION_MISMATCH", "RM has detected an NVML/RM version mismatch."},
    {19, "IN_USE", "In use by another client"},
    {20, "MEMORY", "Insufficient Memory"},
    {21, "NO_DATA", "No data"},
    {22, "VGPU_ECC_NOT_SUPPORTED", "vGPU operation not available because ECC is enabled"},
    {23, "INSUFFICIENT_RESOURCES", "Ran out of critical resources, other than memory"},
    {24, "FREQ_NOT_SUPPORTED", "Frequency not supported"},
    {25, "ARGUMENT_VERSION_MISMATCH", "Argument version mismatch"},
    {26, "DEPRECATED", "Deprecated"},
    {27, "NOT_READY", "System is not ready"},
    {28, "GPU_NOT_FOUND", "GPU not found"},
    {29, "INVALID_STATE", "Invalid state"},
    {30, "RESET_TYPE_NOT_SUPPORTED", "Reset type not supported"},
    {999, "UNKNOWN", "Unknown Error"},
}};

// CUresult codes: cuda.h's full name, and what cuGetErrorString says.
constexpr std::array<CodeInfo, 17> cuda_code_table{{
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
    {36,
     "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER",
     "API call is not supported in the installed CUDA driver"},
    {46, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {800, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {803,
     "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     "system has unsupported display driver / cuda driver combination"},
    {804,
     "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
     "forward compatibility was attempted on non supported HW"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
}};

// Exported functions that take a device (or a device index) and can be faulted per GPU; the
// cu* ones are the CUDA simulator's.
constexpr std::array<std::string_view, 28> device_functions{
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMinorNumber",
    "nvmlDeviceGetCpuAffinity",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetPciInfo_v2",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses_v3",
    "nvmlDeviceGetGraphicsRunningProcesses_v2",
    "nvmlDeviceGetGraphicsRunningProcesses",
    "cuDeviceGetByPCIBusId",
    "cuDeviceGetPCIBusId",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxSetCurrent",
    "cuMemGetInfo_v2",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
};

// Exported functions that take no device and can be faulted machine-wide.
constexpr std::array<std::string_view, 6> system_functions{
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetCount",
    "cuInit",
    "cuDriverGetVersion",
    "cuDeviceGetCount",
};

// Upper bounds that keep byte arithmetic far from overflow (1 PiB per GPU).
constexpr unsigned long long max_memory_mib = 1ULL << 30U;
constexpr unsigned long long max_u32 = 0xFFFFFFFFULL;

// Thrown only inside parse_machine and caught there.
class SchemaError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

std::string path_of(const std::string& where, std::string_view key) {
    return where.empty() ? std::string(key) : where + "." + std::string(key);
}

template <std::size_t N> std::string join(const std::array<std::string_view, N>& names) {
    std::string out;
    for (const auto name : names) {
        out += out.empty() ? "" : ", ";
        out += name;
    }
    return out;
}

void check_keys(const json& object,
                const std::string& where,
                std::initializer_list<std::string_view> known) {
    const std::string what = where.empty() ? "top level" : where;
    if (!object.is_object()) {
        throw SchemaError(what + ": expected an object, got " + object.type_name());
    }
    for (const auto& item : object.items()) {
        if (std::find(known.begin(), known.end(), item.key()) != known.end()) {
            continue;
        }
        std::string list;
        for (const auto name : known) {
            list += list.empty() ? "" : ", ";
            list += name;
        }
        std::string message = what;
        message += ": unknown key \"";
        message += item.key();
        message += "\" (known keys: ";
        message += list;
        message += ")";
        throw SchemaError(message);
    }
}

const json* find_key(const json& object, std::string_view key) {
    const auto it = object.find(std::string(key));
    return it == object.end() ? nullptr : &*it;
}

std::string get_string(const json& object,
                       const std::string& where,
                       std::string_view key,
                       std::string fallback,
                       std::size_t max_length) {
    const json* value = find_key(object, key);
    if (value == nullptr) {
        return fallback;
    }
    if (!value->is_string()) {
        throw SchemaError(path_of(where, key) + ": expected a string, got " + value->type_name());
    }
    auto text = value->get<std::string>();
    if (text.empty() || text.size() >= max_length) {
        throw SchemaError(path_of(where, key) + ": must be 1 to " + std::to_string(max_length - 1) +
                          " characters long");
    }
    return text;
}

unsigned long long to_unsigned(const json& value, const std::string& path, unsigned long long max) {
    if (!value.is_number_unsigned()) {
        throw SchemaError(path + ": expected a non-negative integer, got " + value.dump());
    }
    const auto number = value.get<unsigned long long>();
    if (number > max) {
        throw SchemaError(path + ": " + std::to_string(number) + " is above the maximum " +
                          std::to_string(max));
    }
    return number;
}

unsigned long long get_unsigned(const json& object,
                                const std::string& where,
                                std::string_view key,
                                unsigned long long fallback,
                                unsigned long long max) {
    const json* value = find_key(object, key);
    return value == nullptr ? fallback : to_unsigned(*value, path_of(where, key), max);
}

// A metric: absent -> fallback, null -> not supported (nullopt), else a number.
std::optional<unsigned int> get_metric(const json& object,
                                       const std::string& where,
                                       std::string_view key,
                                       unsigned int fallback,
                                       unsigned long long max) {
    const json* value = find_key(object, key);
    if (value == nullptr) {
        return fallback;
    }
    if (value->is_null()) {
        return std::nullopt;
    }
    return static_cast<unsigned int>(to_unsigned(*value, path_of(where, key), max));
}

bool get_bool(const json& object, const std::string& where, std::string_view key, bool fallback) {
    const json* value = find_key(object, key);
    if (value == nullptr) {
        return fallback;
    }
    if (!value->is_boolean()) {
        throw SchemaError(path_of(where, key) + ": expected true or false, got " + value->dump());
    }
    return value->get<bool>();
}

// A return code by name or number. NVML codes by nvml.h name ("NOT_SUPPORTED",
// "NVML_ERROR_NOT_SUPPORTED"); with `cuda`, CUDA codes by cuda.h name ("OUT_OF_MEMORY",
// "CUDA_ERROR_OUT_OF_MEMORY").
int to_return_code(const json& value, const std::string& path, bool cuda = false) {
    if (value.is_number_integer()) {
        const auto number = value.get<long long>();
        if (number < 0 || number > 999) {
            throw SchemaError(path + ": return code " + std::to_string(number) +
                              " is outside 0..999");
        }
        return static_cast<int>(number);
    }
    if (!value.is_string()) {
        throw SchemaError(path + ": expected a return code name or number, got " + value.dump());
    }
    const std::span<const CodeInfo> table =
        cuda ? std::span<const CodeInfo>(cuda_code_table) : std::span<const CodeInfo>(code_table);
    const auto name = value.get<std::string>();
    for (const auto& info : table) {
        const bool match = cuda ? info.name == name || info.name == "CUDA_ERROR_" + name ||
                                      info.name == "CUDA_" + name
                                : info.name == name ||
                                      "NVML_ERROR_" + std::string(info.name) == name ||
                                      "NVML_" + std::string(info.name) == name;
        if (match) {
            return info.code;
        }
    }
    std::string known;
    for (const auto& info : table) {
        known += known.empty() ? "" : ", ";
        known += info.name;
    }
    throw SchemaError(path + ": unknown return code \"" + name + "\" (known: " + known + ")");
}

// One fault: a return code, or for a cu* function on a GPU also {"code": ..., "after": N},
// a fault that lets the first N calls through. Returns the code; sets `after`.
int parse_fault(const json& value, const std::string& path, bool cuda, unsigned long long* after) {
    if (!value.is_object()) {
        return to_return_code(value, path, cuda);
    }
    if (!cuda || after == nullptr) {
        throw SchemaError(path + ": only a cu* function on a GPU takes {\"code\", \"after\"}");
    }
    check_keys(value, path, {"code", "after"});
    const json* code = find_key(value, "code");
    if (code == nullptr) {
        throw SchemaError(path + ": \"code\" is required");
    }
    *after = get_unsigned(value, path, "after", 0, max_u32);
    return to_return_code(*code, path_of(path, "code"), cuda);
}

// The "faults" object; `after` receives the counts of delayed faults, where allowed.
template <std::size_t N>
FaultTable parse_faults(const json& object,
                        const std::string& where,
                        const std::array<std::string_view, N>& allowed,
                        FaultCounts* after) {
    FaultTable faults;
    const json* value = find_key(object, "faults");
    if (value == nullptr) {
        return faults;
    }
    const std::string path = path_of(where, "faults");
    if (!value->is_object()) {
        throw SchemaError(path + ": expected an object, got " + value->type_name());
    }
    for (const auto& item : value->items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
            throw SchemaError(
                path + ": \"" + item.key() +
                "\" is not a function that can be faulted here (allowed: " + join(allowed) + ")");
        }
        const bool cuda = item.key().starts_with("cu");
        unsigned long long calls = 0;
        const auto item_path = path + "." + item.key();
        faults.emplace(
            item.key(),
            parse_fault(item.value(), item_path, cuda, after != nullptr ? &calls : nullptr));
        if (calls > 0 && after != nullptr) {
            after->emplace(item.key(), calls);
        }
    }
    return faults;
}

bool parse_hex(std::string_view text, std::size_t digits, unsigned int& out) {
    if (text.size() != digits) {
        return false;
    }
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out, 16);
    return ec == std::errc{} && ptr == end;
}

// "00000000:07:00.0" (NVML) or "0000:07:00.0" (sysfs/legacy), hex digits.
void parse_pci_bus_id(const std::string& text, const std::string& path, SimGpu& gpu) {
    const std::string_view id = text;
    const auto colon = id.find(':');
    bool ok = colon != std::string_view::npos && id.size() == colon + 8 && id[colon + 3] == ':' &&
              id[colon + 6] == '.';
    unsigned int function = 0;
    ok = ok && (parse_hex(id.substr(0, colon), 8, gpu.pci_domain) ||
                parse_hex(id.substr(0, colon), 4, gpu.pci_domain));
    ok = ok && parse_hex(id.substr(colon + 1, 2), 2, gpu.pci_bus) &&
         parse_hex(id.substr(colon + 4, 2), 2, gpu.pci_device) &&
         parse_hex(id.substr(colon + 7, 1), 1, function);
    if (!ok) {
        throw SchemaError(path + ": \"" + text +
                          "\" is not a PCI bus id like \"00000000:07:00.0\" (hex digits)");
    }
    if (gpu.pci_device > 0x1FU || function != 0) {
        throw SchemaError(path + ": \"" + text + "\" needs device <= 1F and function 0");
    }
}

// PCI device ids of the models used in the shipped machines; others report 0.
unsigned int pci_device_id_for(std::string_view name) {
    struct Model {
        std::string_view name;
        unsigned int id;
    };
    static constexpr std::array<Model, 10> models{{
        {"NVIDIA A100-SXM4-80GB", 0x20B2},
        {"NVIDIA A100-SXM4-40GB", 0x20B0},
        {"NVIDIA A100-PCIE-40GB", 0x20F1},
        {"NVIDIA A100 80GB PCIe", 0x20B5},
        {"NVIDIA H100 80GB HBM3", 0x2330},
        {"NVIDIA H100 PCIe", 0x2331},
        {"Tesla V100-SXM2-16GB", 0x1DB1},
        {"Tesla V100-SXM2-32GB", 0x1DB5},
        {"Tesla T4", 0x1EB8},
        {"NVIDIA GeForce RTX 4090", 0x2684},
    }};
    for (const auto& model : models) {
        if (model.name == name) {
            return model.id;
        }
    }
    return 0;
}

SimProcess parse_process(const json& object, const std::string& where) {
    check_keys(object, where, {"pid", "used_memory_mib", "type", "listed_after_calls"});
    SimProcess process;
    const json* pid = find_key(object, "pid");
    if (pid == nullptr) {
        throw SchemaError(where + ": \"pid\" is required");
    }
    process.pid = static_cast<unsigned int>(to_unsigned(*pid, path_of(where, "pid"), max_u32));
    if (process.pid == 0) {
        throw SchemaError(path_of(where, "pid") + ": must be positive");
    }
    const json* used = find_key(object, "used_memory_mib");
    if (used == nullptr) {
        process.used_memory_mib = 0;
    } else if (!used->is_null()) {
        process.used_memory_mib =
            to_unsigned(*used, path_of(where, "used_memory_mib"), max_memory_mib);
    }
    if (const json* after = find_key(object, "listed_after_calls"); after != nullptr) {
        process.listed_after_calls =
            to_unsigned(*after, path_of(where, "listed_after_calls"), max_u32);
    }
    const auto type = get_string(object, where, "type", "compute", 64);
    if (type == "compute") {
        process.type = ProcessType::compute;
    } else if (type == "graphics") {
        process.type = ProcessType::graphics;
    } else if (type == "both") {
        process.type = ProcessType::both;
    } else {
        throw SchemaError(path_of(where, "type") + ": \"" + type +
                          "\" is not one of compute, graphics, both");
    }
    return process;
}

// "0-3,8,10-11" (a Linux cpulist) -> the CPUs, ascending and without duplicates.
std::vector<unsigned int> parse_cpu_list(const std::string& text, const std::string& path) {
    constexpr unsigned int max_cpu = 4095; // what with-gpu asks NVML about
    std::set<unsigned int> cpus;
    const auto bad = [&](const std::string& why) {
        return SchemaError(path + ": \"" + text + "\" " + why +
                           " (expected a CPU list like \"0-15,32-47\")");
    };
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const auto item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const auto dash = item.find('-');
        const auto number = [&](const std::string& digits) {
            if (digits.empty() || digits.size() > 4 ||
                digits.find_first_not_of("0123456789") != std::string::npos) {
                throw bad("has an item that is not a CPU number or range");
            }
            const auto value = static_cast<unsigned int>(std::stoul(digits));
            if (value > max_cpu) {
                throw bad("names a CPU above 4095");
            }
            return value;
        };
        const unsigned int first = number(item.substr(0, dash));
        const unsigned int last = dash == std::string::npos ? first : number(item.substr(dash + 1));
        if (last < first) {
            throw bad("has a range that ends before it starts");
        }
        for (unsigned int cpu = first; cpu <= last; ++cpu) {
            cpus.insert(cpu);
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return {cpus.begin(), cpus.end()};
}

std::string hex_index(std::size_t index, int width) {
    std::string digits(static_cast<std::size_t>(width), '0');
    for (auto pos = digits.size(); pos > 0 && index > 0; --pos, index /= 16) {
        digits[pos - 1] = "0123456789abcdef"[index % 16];
    }
    return digits;
}

SimGpu parse_gpu(const json& object, const std::string& where, std::size_t index) {
    check_keys(object,
               where,
               {"name",
                "uuid",
                "pci_bus_id",
                "minor_number",
                "cpu_affinity",
                "memory_total_mib",
                "memory_reserved_mib",
                "memory_other_used_mib",
                "utilization_percent",
                "memory_utilization_percent",
                "temperature_c",
                "power_mw",
                "power_limit_mw",
                "processes",
                "lost",
                "faults",
                "process_stride",
                "cuda_context_mib"});
    SimGpu gpu;
    gpu.name = get_string(object, where, "name", "NVIDIA Simulated GPU", 96);
    gpu.pci_device_id = pci_device_id_for(gpu.name);
    gpu.uuid = get_string(
        object, where, "uuid", "GPU-00000000-0000-4000-8000-" + hex_index(index, 12), 96);
    const auto bus_id = get_string(
        object, where, "pci_bus_id", "00000000:" + hex_index(index + 1, 2) + ":00.0", 32);
    parse_pci_bus_id(bus_id, path_of(where, "pci_bus_id"), gpu);
    gpu.minor_number =
        static_cast<unsigned int>(get_unsigned(object, where, "minor_number", index, 255));
    if (const json* affinity = find_key(object, "cpu_affinity");
        affinity != nullptr && !affinity->is_null()) {
        if (!affinity->is_string()) {
            throw SchemaError(path_of(where, "cpu_affinity") + ": expected a string like " +
                              "\"0-15\", got " + affinity->dump());
        }
        gpu.cpu_affinity =
            parse_cpu_list(affinity->get<std::string>(), path_of(where, "cpu_affinity"));
    }

    gpu.memory_total_mib = get_unsigned(object, where, "memory_total_mib", 81920, max_memory_mib);
    gpu.memory_reserved_mib = get_unsigned(object, where, "memory_reserved_mib", 0, max_memory_mib);
    gpu.memory_other_used_mib =
        get_unsigned(object, where, "memory_other_used_mib", 0, max_memory_mib);
    gpu.utilization_percent = get_metric(object, where, "utilization_percent", 0, 100);
    gpu.memory_utilization_percent =
        get_metric(object, where, "memory_utilization_percent", 0, 100);
    gpu.temperature_c = get_metric(object, where, "temperature_c", 0, 200);
    gpu.power_mw = get_metric(object, where, "power_mw", 0, max_u32);
    gpu.power_limit_mw = get_metric(object, where, "power_limit_mw", 0, max_u32);
    gpu.lost = get_bool(object, where, "lost", false);
    gpu.faults = parse_faults(object, where, device_functions, &gpu.fault_after);
    gpu.process_stride =
        static_cast<unsigned int>(get_unsigned(object, where, "process_stride", 24, max_u32));
    if (gpu.process_stride != 24 && gpu.process_stride != 32) {
        throw SchemaError(path_of(where, "process_stride") + ": must be 24 or 32, not " +
                          std::to_string(gpu.process_stride));
    }
    gpu.cuda_context_mib = get_unsigned(object, where, "cuda_context_mib", 300, max_memory_mib);

    if (const json* processes = find_key(object, "processes"); processes != nullptr) {
        const auto path = path_of(where, "processes");
        if (!processes->is_array()) {
            throw SchemaError(path + ": expected an array, got " + processes->type_name());
        }
        std::set<unsigned int> pids;
        for (std::size_t i = 0; i < processes->size(); ++i) {
            const auto entry_path = path + "[" + std::to_string(i) + "]";
            auto process = parse_process(processes->at(i), entry_path);
            if (!pids.insert(process.pid).second) {
                throw SchemaError(entry_path + ": pid " + std::to_string(process.pid) +
                                  " is listed twice on this GPU (use \"type\": \"both\")");
            }
            gpu.processes.push_back(process);
        }
    }

    unsigned long long process_mib = 0;
    for (const auto& process : gpu.processes) {
        process_mib += process.used_memory_mib.value_or(0);
    }
    const auto needed = gpu.memory_reserved_mib + gpu.memory_other_used_mib + process_mib;
    if (needed > gpu.memory_total_mib) {
        throw SchemaError(where + ": memory_reserved_mib (" +
                          std::to_string(gpu.memory_reserved_mib) + ") + memory_other_used_mib (" +
                          std::to_string(gpu.memory_other_used_mib) + ") + process memory (" +
                          std::to_string(process_mib) + ") exceed memory_total_mib (" +
                          std::to_string(gpu.memory_total_mib) + ")");
    }
    return gpu;
}

Machine parse_root(const json& root) {
    check_keys(root, "", {"driver_version", "init_error", "faults", "cuda_driver_version", "gpus"});
    Machine machine;
    machine.driver_version = get_string(root, "", "driver_version", "550.54.15", 80);
    if (const json* init_error = find_key(root, "init_error"); init_error != nullptr) {
        machine.init_error = to_return_code(*init_error, "init_error");
    }
    machine.faults = parse_faults(root, "", system_functions, nullptr);
    machine.cuda_driver_version =
        static_cast<int>(get_unsigned(root, "", "cuda_driver_version", 12040, 99999));

    const json* gpus = find_key(root, "gpus");
    if (gpus == nullptr) {
        return machine;
    }
    if (!gpus->is_array()) {
        throw SchemaError(std::string("gpus: expected an array, got ") + gpus->type_name());
    }
    if (gpus->size() > max_gpus) {
        throw SchemaError("gpus: " + std::to_string(gpus->size()) +
                          " GPUs, the simulator handles " + std::to_string(max_gpus) + " at most");
    }
    for (std::size_t i = 0; i < gpus->size(); ++i) {
        const auto where = "gpus[" + std::to_string(i) + "]";
        auto gpu = parse_gpu(gpus->at(i), where, i);
        for (std::size_t j = 0; j < machine.gpus.size(); ++j) {
            const auto& other = machine.gpus[j];
            if (other.uuid == gpu.uuid) {
                throw SchemaError(where + ".uuid: \"" + gpu.uuid + "\" is also the uuid of gpus[" +
                                  std::to_string(j) + "]");
            }
            if (other.minor_number == gpu.minor_number) {
                throw SchemaError(where + ".minor_number: " + std::to_string(gpu.minor_number) +
                                  " is also the minor number of gpus[" + std::to_string(j) + "]");
            }
            if (other.pci_domain == gpu.pci_domain && other.pci_bus == gpu.pci_bus &&
                other.pci_device == gpu.pci_device) {
                throw SchemaError(where + ".pci_bus_id: same PCI address as gpus[" +
                                  std::to_string(j) + "]");
            }
        }
        machine.gpus.push_back(std::move(gpu));
    }
    return machine;
}

} // namespace

ParsedMachine parse_machine(std::string_view json_text) noexcept {
    try {
        // nlohmann keeps the last of duplicate keys silently; a duplicate is a fixture typo.
        std::vector<std::set<std::string>> open_objects;
        std::string duplicate;
        const json::parser_callback_t watch_duplicates =
            [&](int /*depth*/, json::parse_event_t event, json& parsed) {
                if (event == json::parse_event_t::object_start) {
                    open_objects.emplace_back();
                } else if (event == json::parse_event_t::object_end && !open_objects.empty()) {
                    open_objects.pop_back();
                } else if (event == json::parse_event_t::key && !open_objects.empty() &&
                           !open_objects.back().insert(parsed.get<std::string>()).second &&
                           duplicate.empty()) {
                    duplicate = parsed.get<std::string>();
                }
                return true;
            };
        const auto root = json::parse(json_text, watch_duplicates, true, true);
        if (!duplicate.empty()) {
            return {std::nullopt, "duplicate key \"" + duplicate + "\""};
        }
        return {parse_root(root), {}};
    } catch (const std::exception& e) {
        return {std::nullopt, e.what()};
    } catch (...) {
        return {std::nullopt, "unexpected error while parsing"};
    }
}

MemoryFigures memory_figures(const SimGpu& gpu) noexcept {
    constexpr unsigned long long mib = 1024ULL * 1024ULL;
    unsigned long long used_mib = gpu.memory_other_used_mib;
    for (const auto& process : gpu.processes) {
        used_mib += process.used_memory_mib.value_or(0);
    }
    MemoryFigures figures;
    figures.total = gpu.memory_total_mib * mib;
    figures.reserved = gpu.memory_reserved_mib * mib;
    figures.used = used_mib * mib;
    // parse_machine checks the file's figures, but the CUDA simulator's processes come on
    // top, and the file may shrink under them.
    const auto taken = figures.reserved + figures.used;
    figures.free = taken < figures.total ? figures.total - taken : 0;
    return figures;
}

const char* error_string(int code) noexcept {
    for (const auto& info : code_table) {
        if (info.code == code) {
            return info.message;
        }
    }
    return "Unknown Error";
}

const char* cuda_error_name(int code) noexcept {
    for (const auto& info : cuda_code_table) {
        if (info.code == code) {
            return info.name.data(); // the literals are NUL-terminated
        }
    }
    return nullptr;
}

const char* cuda_error_string(int code) noexcept {
    for (const auto& info : cuda_code_table) {
        if (info.code == code) {
            return info.message;
        }
    }
    return nullptr;
}

} // namespace withgpu::sim
