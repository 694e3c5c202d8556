#include "targets.hpp"

#include "cli/options.hpp"
#include "config/resolve.hpp"
#include "config/show.hpp"
#include "lock/claim.hpp"
#include "queue/ticket.hpp"
#include "queue/turn.hpp"
#include "report/decision_report.hpp"
#include "report/status_json.hpp"
#include "report/status_table.hpp"
#include "report/waiting_report.hpp"
#include "selection/gpu_ref.hpp"
#include "selection/select.hpp"
#include "util/text.hpp"
#include "util/units.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace withgpu::fuzz {

namespace {

// A realistic "now": claim ages are computed from it.
constexpr std::int64_t now_unix = 1'800'000'000;

// Reads structured values off the front of the input, then yields what is left. Running out
// of bytes gives zeros and empty strings, never an error.
class Bytes {
  public:
    explicit Bytes(std::string_view data) : m_data(data) {}

    std::uint8_t byte() {
        if (m_data.empty()) {
            return 0;
        }
        const auto b = static_cast<std::uint8_t>(m_data.front());
        m_data.remove_prefix(1);
        return b;
    }
    bool flag() { return (byte() & 1U) != 0; }
    std::uint64_t u64() {
        std::uint64_t value = 0;
        for (int i = 0; i < 8; ++i) {
            value = (value << 8U) | byte();
        }
        return value;
    }
    std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
    // A length byte, then that many bytes (a whole string of any bytes at all).
    std::string text() {
        const std::size_t wanted = byte(); // read first: it shortens m_data
        const std::size_t length = std::min(wanted, m_data.size());
        std::string out(m_data.substr(0, length));
        m_data.remove_prefix(length);
        return out;
    }
    std::optional<std::string> maybe_text() {
        if (!flag()) {
            return std::nullopt;
        }
        return text();
    }
    template <typename T> std::optional<T> maybe(T value) {
        return flag() ? std::optional<T>(value) : std::nullopt;
    }
    std::string_view rest() const { return m_data; }

  private:
    std::string_view m_data;
};

std::string_view g_target; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): messages

void check(bool condition, std::string_view what) {
    if (!condition) {
        violation(g_target, what);
    }
}

// Terminal text: valid UTF-8 with no control character but the newlines the renderer puts
// there itself. Checked byte by byte, independently of text::printable.
void check_terminal_safe(std::string_view out, std::string_view where) {
    check(text::valid_utf8(out) == out, std::string(where) + ": not valid UTF-8");
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto b = static_cast<unsigned char>(out[i]);
        check((b >= 0x20 && b != 0x7F) || b == '\n',
              std::string(where) + ": control byte " + std::to_string(b));
        if (b == 0xC2 && i + 1 < out.size()) {
            const auto next = static_cast<unsigned char>(out[i + 1]);
            check(next < 0x80 || next > 0x9F, std::string(where) + ": C1 control");
        }
        if (b == 0xE2 && i + 2 < out.size()) {
            const auto b1 = static_cast<unsigned char>(out[i + 1]);
            const auto b2 = static_cast<unsigned char>(out[i + 2]);
            check(!(b1 == 0x80 && b2 >= 0xAA && b2 <= 0xAE) &&
                      !(b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9),
                  std::string(where) + ": bidirectional control");
        }
    }
}

// A JSON document as it is printed: dumping must not throw (every string valid UTF-8, which
// the default strict handler checks) and the text must parse back to the same document.
void check_json(const nlohmann::json& doc, std::string_view where) {
    std::string dumped;
    try {
        dumped = doc.dump(2);
    } catch (const nlohmann::json::exception& e) {
        violation(g_target, std::string(where) + ": dump threw " + e.what());
    }
    const auto parsed = nlohmann::json::parse(dumped, nullptr, false);
    check(!parsed.is_discarded(), std::string(where) + ": does not parse back");
    check(parsed.dump() == doc.dump(), std::string(where) + ": changed by a round trip");
}

// The board with colour, less its SGR sequences, must be the plain board.
std::string strip_sgr(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\033' && i + 1 < text.size() && text[i + 1] == '[') {
            const auto end = text.find('m', i);
            if (end != std::string_view::npos) {
                i = end;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

// --- targets ----------------------------------------------------------------------------------

void run_text(std::string_view data) {
    const std::string valid = text::valid_utf8(data);
    check(text::valid_utf8(valid) == valid, "valid_utf8 is not idempotent");
    const std::string shown = text::printable(data);
    check(text::printable(shown) == shown, "printable is not idempotent");
    check_terminal_safe(shown, "printable");
    nlohmann::json doc = valid;
    check_json(doc, "valid_utf8 in JSON");
}

void run_units(std::string_view data) {
    if (auto bytes = units::parse_size(data)) {
        (void)units::format_size(*bytes);
    } else {
        check(bytes.error().kind == ErrorKind::usage, "parse_size: error kind");
        check(!bytes.error().message.empty(), "parse_size: empty message");
    }
    if (auto duration = units::parse_duration(data)) {
        check(duration->count() >= 0, "parse_duration: negative");
        (void)units::format_duration(std::chrono::duration_cast<std::chrono::seconds>(*duration));
    } else {
        check(duration.error().kind == ErrorKind::usage, "parse_duration: error kind");
    }
    if (auto value = units::parse_unsigned(data, "-n")) {
        const auto again = units::parse_unsigned(std::to_string(*value), "-n");
        check(again && *again == *value, "parse_unsigned: no round trip");
    }
    Bytes bytes(data);
    (void)units::format_size(bytes.u64());
    const std::int64_t since = bytes.i64();
    const std::int64_t now = bytes.i64();
    const auto seconds = units::elapsed(since, now);
    check(seconds.count() >= 0, "elapsed: negative");
    (void)units::format_duration(seconds);
}

gpu::MachineSnapshot sample_machine() {
    gpu::MachineSnapshot machine;
    const char* uuids[] = {"GPU-5a1b0000-0000-4000-8000-000000000000",
                           "GPU-5a2c0000-0000-4000-8000-000000000001",
                           "GPU-77000000-0000-4000-8000-000000000002"};
    for (unsigned i = 0; i < 3; ++i) {
        gpu::GpuSnapshot g;
        g.index = i;
        g.uuid = uuids[i];
        g.name = i == 2 ? "Tesla V100-SXM2-16GB" : "NVIDIA A100-SXM4-80GB";
        g.pci_bus_id = "00000000:1" + std::to_string(i) + ":00.0";
        machine.gpus.push_back(g);
    }
    return machine;
}

void run_gpu_list(std::string_view data) {
    const gpu::MachineSnapshot machine = sample_machine();
    for (const bool names : {false, true}) {
        auto refs = selection::parse_gpu_list(data, "--gpu", names);
        if (!refs) {
            check(refs.error().kind == ErrorKind::usage, "parse_gpu_list: error kind");
            continue;
        }
        for (const auto& ref : *refs) {
            check(names || ref.kind != selection::GpuRef::Kind::name_substring,
                  "a name reference where names are not allowed");
            for (const auto& g : machine.gpus) {
                (void)selection::matches(ref, g);
            }
        }
        (void)selection::check_unique_prefixes(*refs, "--gpu", machine);
    }
    auto visible = selection::parse_cuda_visible_devices(std::string(data));
    if (visible) {
        check(visible->restricted, "a set CUDA_VISIBLE_DEVICES must restrict");
    }
}

void run_ticket(std::string_view data) {
    auto ticket = queue::decode(data);
    if (!ticket) {
        check(ticket.error().kind == ErrorKind::failed, "decode: error kind");
        return;
    }
    const std::string encoded = queue::encode(*ticket);
    check(!encoded.empty() && encoded.back() == '\n' && encoded.find('\n') == encoded.size() - 1,
          "encode: not one line");
    auto again = queue::decode(encoded);
    check(again.has_value(), "decode(encode(ticket)) failed");
    check(queue::encode(*again) == encoded, "encode/decode is not stable");
    // What the waiter wants may be anything: deciding over it must hold.
    const auto machine = sample_machine();
    (void)queue::usable_gpus(machine, ticket->request);
    const auto turn = queue::take_turn(machine, {*ticket}, selection::Request{}, {}, now_unix);
    check_terminal_safe(report::decision_text(machine, turn.decision), "decision with a ticket");
    check_json(report::decision_json(machine, turn.decision), "decision JSON with a ticket");
    check_json(report::status_json(machine, {}, {*ticket}), "status JSON with a ticket");
    check_terminal_safe(report::status_table(machine, {}, {*ticket}, now_unix),
                        "board with a ticket");
}

void run_claim_record(std::string_view data) {
    const gpu::ClaimHolder holder = lock::parse_claim_record(data);
    const std::string line = lock::format_claim_record(holder);
    check(line.size() < 4096, "claim record: too long for the reader");
    check(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1,
          "claim record: not one line");
    const gpu::ClaimHolder again = lock::parse_claim_record(line);
    check(again.pid == holder.pid && again.supervisor_pid == holder.supervisor_pid &&
              again.since_unix == holder.since_unix,
          "claim record: numbers changed by a round trip");
    const auto machine = sample_machine();
    const gpu::ClaimMap claims{{machine.gpus[0].uuid, holder}};
    check_json(report::status_json(machine, claims, {}), "status JSON with a claim");
    check_terminal_safe(report::status_table(machine, claims, {}, now_unix), "board with a claim");
    const auto decision = selection::select(machine, selection::Request{}, claims, now_unix);
    check_terminal_safe(report::rejection_lines(decision), "rejections with a claim");
}

// A machine, claims, a queue and a request made of the input's bytes, with arbitrary bytes
// in every string; every renderer must keep its promises over it.
void run_report(std::string_view data) {
    Bytes in(data);
    gpu::MachineSnapshot machine;
    machine.driver_version = in.text();
    gpu::ClaimMap claims;
    const unsigned gpu_count = in.byte() % 5U;
    for (unsigned i = 0; i < gpu_count; ++i) {
        gpu::GpuSnapshot g;
        g.index = in.flag() ? i : in.byte();
        g.uuid = in.text();
        g.name = in.text();
        g.pci_bus_id = in.text();
        g.error = in.maybe_text();
        g.memory_total_bytes = in.maybe(in.u64());
        g.memory_used_bytes = in.maybe(in.u64());
        g.memory_free_bytes = in.maybe(in.u64());
        g.memory_reserved_bytes = in.maybe(in.u64());
        g.utilization_percent = in.maybe(static_cast<unsigned>(in.byte()));
        g.temperature_c = in.maybe(static_cast<unsigned>(in.byte()));
        g.power_w = in.maybe(static_cast<double>(in.u64() % 100'000U) / 7.0);
        g.power_limit_w = in.maybe(static_cast<double>(in.byte()) * 3.0);
        if (in.flag()) {
            std::vector<gpu::Process> processes;
            const unsigned process_count = in.byte() % 13U;
            for (unsigned p = 0; p < process_count; ++p) {
                gpu::Process process;
                process.pid = static_cast<unsigned>(in.u64());
                process.kind = static_cast<gpu::Process::Kind>(in.byte() % 3U);
                process.used_memory_bytes = in.maybe(in.u64());
                process.user = in.maybe_text();
                process.command = in.maybe_text();
                processes.push_back(std::move(process));
            }
            g.processes = std::move(processes);
        }
        if (in.flag()) {
            gpu::ClaimHolder holder;
            holder.pid = in.maybe(static_cast<int>(in.u64()));
            holder.supervisor_pid = in.maybe(static_cast<int>(in.u64()));
            holder.user = in.maybe_text();
            holder.command = in.maybe_text();
            holder.since_unix =
                in.maybe(in.flag() ? in.i64() : now_unix - std::int64_t{in.byte()} * 1000);
            claims[g.uuid] = holder;
        }
        machine.gpus.push_back(std::move(g));
    }
    std::vector<queue::Ticket> tickets;
    const unsigned ticket_count = in.byte() % 3U;
    for (unsigned t = 0; t < ticket_count; ++t) {
        queue::Ticket ticket;
        ticket.seq = t;
        ticket.pid = static_cast<int>(in.u64());
        ticket.user = in.text();
        ticket.command = in.text();
        ticket.since_unix = in.flag() ? in.i64() : now_unix - in.byte();
        ticket.request.min_gpus = 1U + in.byte() % 3U;
        ticket.request.max_gpus = ticket.request.min_gpus + in.byte() % 2U;
        tickets.push_back(std::move(ticket));
    }
    selection::Request request;
    request.min_gpus = 1U + in.byte() % 3U;
    request.max_gpus = request.min_gpus + in.byte() % 3U;
    if (auto only = selection::parse_gpu_list(in.text(), "--gpu", false); only && in.flag()) {
        request.only = std::move(*only);
    }
    if (auto exclude = selection::parse_gpu_list(in.text(), "--exclude", true); exclude) {
        request.exclude = std::move(*exclude);
        if (in.flag()) {
            request.banned = request.exclude;
        }
    }
    if (in.flag()) {
        request.gpu_type = in.text();
        request.strict_type = in.flag();
    }
    request.min_free_bytes = in.maybe(in.u64());
    request.max_utilization_percent = in.maybe(static_cast<unsigned>(in.byte() % 101U));
    request.max_temperature_c = in.maybe(static_cast<unsigned>(in.byte()));
    request.max_power_w = in.maybe(static_cast<double>(in.byte()) * 2.0);
    request.require_idle = in.flag();
    const report::Style plain{false, static_cast<unsigned>(in.byte()) + 20U};
    const report::Style colour{true, plain.width};

    check_json(report::status_json(machine, claims, tickets), "status JSON");
    const std::string board = report::status_table(machine, claims, tickets, now_unix, plain);
    check_terminal_safe(board, "board");
    const std::string painted = report::status_table(machine, claims, tickets, now_unix, colour);
    check(strip_sgr(painted) == board, "the coloured board differs from the plain one");

    const auto turn = queue::take_turn(machine, tickets, request, claims, now_unix);
    check_json(report::decision_json(machine, turn.decision), "decision JSON");
    check_terminal_safe(report::decision_text(machine, turn.decision), "decision text");
    check_terminal_safe(report::rejection_lines(turn.decision), "rejection lines");
    const report::WaitingState waiting = report::waiting_state(turn, request.min_gpus);
    check_terminal_safe(report::waiting_line(waiting, std::chrono::seconds(65)), "waiting line");
    check(report::same_but_ages(waiting, waiting), "waiting state differs from itself");
}

// The configuration layer over hostile files, environment and flags. Sections of the input
// are separated by a form feed: system file, user file, environment lines (NAME=value),
// command-line arguments (one per line).
void run_config(std::string_view data) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto end = data.find('\f');
        parts.push_back(data.substr(0, end));
        if (end == std::string_view::npos || parts.size() == 4) {
            break;
        }
        data.remove_prefix(end + 1);
    }
    parts.resize(4);
    cli::ConfigFiles files;
    if (!parts[0].empty()) {
        files.system = config::ConfigFile{"system.toml", std::string(parts[0])};
    }
    if (!parts[1].empty()) {
        files.user = config::ConfigFile{"user.toml", std::string(parts[1])};
    }
    std::map<std::string, std::string> environment;
    std::string_view env = parts[2];
    while (!env.empty()) {
        const auto end = env.find('\n');
        const std::string_view line = env.substr(0, end);
        if (const auto eq = line.find('='); eq != std::string_view::npos) {
            environment[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
        }
        env.remove_prefix(end == std::string_view::npos ? env.size() : end + 1);
    }
    std::vector<std::string> args;
    std::string_view argv = parts[3];
    while (!argv.empty()) {
        const auto end = argv.find('\n');
        args.emplace_back(argv.substr(0, end));
        argv.remove_prefix(end == std::string_view::npos ? argv.size() : end + 1);
    }

    config::Sources sources;
    sources.system_file = files.system;
    sources.user_file = files.user;
    sources.environment = environment;
    if (auto settings = config::resolve(sources)) {
        (void)config::show(*settings);
    } else {
        check(settings.error().kind == ErrorKind::usage, "resolve: error kind");
    }
    auto parsed = cli::parse(args, environment, files);
    if (!parsed) {
        check(parsed.error().kind == ErrorKind::usage, "cli::parse: error kind");
        check(!parsed.error().message.empty(), "cli::parse: empty message");
        return;
    }
    if (const auto* options = std::get_if<cli::Options>(&*parsed)) {
        check(options->launch.request.min_gpus >= 1 &&
                  options->launch.request.max_gpus >= options->launch.request.min_gpus,
              "cli::parse: accepted an inconsistent GPU count");
        const selection::Request& r = options->launch.request;
        check(!r.max_utilization_percent || *r.max_utilization_percent <= 100,
              "cli::parse: accepted a utilisation above 100%");
        check(!r.gpu_type || !r.gpu_type->empty(), "cli::parse: accepted an empty --gpu-type");
        check(!r.strict_type || r.gpu_type, "cli::parse: accepted --strict without a type");
    }
}

std::vector<Target> make_targets() {
    return {
        {"text", run_text, {"\x1b[", "\xc2\x9b", "\xe2\x80\xae", "\xed\xa0\x80", "\xf4\x90"}},
        {"units",
         run_units,
         {"G", "GiB", "MB", "T", "ms", "s", "m", "h", ".", "e9", "18446744073709551615", "-"}},
        {"gpu_list",
         run_gpu_list,
         {",", "GPU-", "GPU-5a", "MIG-", "name:", "00000000:", ":00.0", "NoDevFiles", "-1"}},
        {"ticket",
         run_ticket,
         {"\"version\":1",
          "\"seq\":",
          "null",
          "\"kind\":\"uuid\"",
          "\"kind\":\"name\"",
          "1e999",
          "-1",
          "4294967296",
          "18446744073709551616",
          "\\u001b",
          "\\ud800",
          "[",
          "{",
          "}"}},
        {"claim_record",
         run_claim_record,
         {"\"pid\":",
          "\"since\":",
          "-9223372036854775808",
          "9223372036854775807",
          "\\u001b",
          "\\u009b",
          "\n",
          "null",
          "1.5"}},
        {"report", run_report, {"\x1b[2J", "\xc2\x9b", "\xff", "GPU-", "\n", "\xe2\x80\xae"}},
        {"config",
         run_config,
         {"[defaults]\n",
          "[profiles.x]\n",
          "banned = ",
          "count = ",
          "min_memory = \"",
          "lock_dir = ",
          "exclude = [",
          "\f",
          "WITH_GPU_COUNT=",
          "WITH_GPU_PROFILE=",
          "--gpu\n",
          "-n\n",
          "--profile\n",
          "4294967296",
          "\"\"\"",
          "'''",
          "= { a = 1 }",
          "[[a]]"}},
    };
}

} // namespace

const std::vector<Target>& targets() {
    static const std::vector<Target> all = make_targets();
    return all;
}

const Target* find_target(std::string_view name) {
    for (const auto& t : targets()) {
        if (name == t.name) {
            g_target = t.name;
            return &t;
        }
    }
    return nullptr;
}

void violation(std::string_view target, std::string_view what) {
    std::fprintf(stderr,
                 "fuzz target %.*s: invariant broken: %.*s\n",
                 static_cast<int>(target.size()),
                 target.data(),
                 static_cast<int>(what.size()),
                 what.data());
    std::fflush(stderr);
    std::abort();
}

} // namespace withgpu::fuzz
