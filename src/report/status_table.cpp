#include "report/status_table.hpp"

#include "util/strings.hpp"
#include "util/text.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace withgpu::report {

namespace {

// A figure turns red from here on: the GPU is hot or busy.
constexpr unsigned hot_celsius = 85;
constexpr unsigned busy_percent = 80;

constexpr std::size_t gap = 2;          // spaces between columns
constexpr std::size_t index_width = 3;  // "GPU"
constexpr std::size_t name_cap = 20;    // longer names are cut with "…"
constexpr std::size_t name_min = 12;    // ... down to this on a narrow terminal
constexpr std::size_t bar_max = 12;     // memory bar cells on a wide terminal
constexpr std::size_t bar_min = 4;      // ... and on a narrow one
constexpr std::size_t claim_room = 24;  // the claim column gets this much before the bar shrinks
constexpr std::size_t min_command = 12; // a process's or waiter's command keeps at least this
constexpr std::size_t user_cap = 12;
constexpr std::size_t min_width = 72; // narrower terminals are drawn as if this wide (and wrap)

enum class Align { left, right };

// A cell padded to `width` with plain spaces; only the text itself is coloured.
std::string
cell(std::string_view text, std::size_t width, Tone tone, Align align, const Style& style) {
    const std::size_t columns = display_width(text);
    const std::string padding(columns < width ? width - columns : 0, ' ');
    const std::string painted = paint(text, tone, style);
    return align == Align::left ? painted + padding : padding + painted;
}

std::string repeat(std::string_view glyph, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        out += glyph;
    }
    return out;
}

// "A100-SXM4-80GB": the vendor prefix says nothing on a board of NVIDIA GPUs.
std::string short_name(const std::string& name) {
    std::string_view n = name;
    constexpr std::string_view vendor = "NVIDIA ";
    if (n.size() > vendor.size() && n.substr(0, vendor.size()) == vendor) {
        n.remove_prefix(vendor.size());
    }
    return n.empty() ? "?" : cut(text::printable(n), name_cap);
}

// GiB without the unit: "65", "0.5", "1.5" (one decimal below 10 where it matters).
std::string gib_figure(std::uint64_t bytes) {
    const double gib = static_cast<double>(bytes) / static_cast<double>(units::mib * 1024U);
    const double tenths = std::round(gib * 10.0) / 10.0;
    if (tenths >= 10.0 || tenths == std::floor(tenths)) {
        return fmt::format("{:.0f}", gib);
    }
    return fmt::format("{:.1f}", tenths);
}

const gpu::ClaimHolder* holder_of(const gpu::ClaimMap& claims, const std::string& uuid) {
    auto it = claims.find(uuid);
    return it == claims.end() ? nullptr : &it->second;
}

// "alice 2h13m": who holds a claim and for how long.
std::string holder_text(const gpu::ClaimHolder& holder, std::int64_t now) {
    std::string text;
    if (holder.slurm_job) {
        text = fmt::format("slurm job {} ({})",
                           text::printable(*holder.slurm_job),
                           holder.user ? text::printable(*holder.user) : "?");
    } else if (holder.user) {
        text = text::printable(*holder.user);
    } else if (holder.pid) {
        text = fmt::format("pid {}", *holder.pid);
    } else {
        text = "?"; // the lock is held but its record could not be read
    }
    if (holder.since_unix && now >= *holder.since_unix) {
        text += " " + units::format_duration(units::elapsed(*holder.since_unix, now));
    }
    if (holder.hold_bytes) {
        text += fmt::format(", holding {} GiB", gib_figure(*holder.hold_bytes));
    }
    if (!holder.misplaced.empty()) {
        text += ", also on " + text::printable(text::join(holder.misplaced, ", "));
    }
    return text;
}

// One GPU's cells as plain text, with the tone each is drawn in.
struct Row {
    std::string index;
    std::string name;
    std::optional<std::string> error;
    std::optional<double> used_fraction; // the memory bar; nullopt draws "n/a"
    std::string memory;                  // "65/80 GiB" or "n/a"
    std::string util;
    Tone util_tone = Tone::plain;
    std::string temp;
    Tone temp_tone = Tone::plain;
    std::string power;
    Tone power_tone = Tone::plain;
    std::string claim;       // "claimed by alice 2h13m" or "free"
    std::string claim_short; // "alice 2h13m": for a narrow claim column
    Tone claim_tone = Tone::green;
};

Row make_row(const gpu::GpuSnapshot& g, const gpu::ClaimMap& claims, std::int64_t now) {
    Row row;
    row.index = std::to_string(g.index);
    row.name = short_name(g.name);
    if (g.error) {
        row.error = text::printable(*g.error);
    }
    if (g.memory_total_bytes && g.memory_used_bytes && *g.memory_total_bytes > 0) {
        row.used_fraction =
            static_cast<double>(*g.memory_used_bytes) / static_cast<double>(*g.memory_total_bytes);
        row.memory = fmt::format(
            "{}/{} GiB", gib_figure(*g.memory_used_bytes), gib_figure(*g.memory_total_bytes));
    } else {
        row.memory = "n/a";
    }
    if (g.utilization_percent) {
        row.util = fmt::format("{}%", *g.utilization_percent);
        row.util_tone = *g.utilization_percent >= busy_percent ? Tone::red : Tone::plain;
    } else {
        row.util = "n/a";
        row.util_tone = Tone::dim;
    }
    if (g.temperature_c) {
        row.temp = fmt::format("{}°C", *g.temperature_c);
        row.temp_tone = *g.temperature_c >= hot_celsius ? Tone::red : Tone::plain;
    } else {
        row.temp = "n/a";
        row.temp_tone = Tone::dim;
    }
    if (g.power_w || g.power_limit_w) {
        row.power = fmt::format("{}/{} W",
                                g.power_w ? fmt::format("{:.0f}", *g.power_w) : "?",
                                g.power_limit_w ? fmt::format("{:.0f}", *g.power_limit_w) : "?");
    } else {
        row.power = "n/a";
        row.power_tone = Tone::dim;
    }
    const gpu::ClaimHolder* holder = holder_of(claims, g.uuid);
    row.claim = holder != nullptr ? "claimed by " + holder_text(*holder, now) : "free";
    row.claim_short = holder != nullptr ? holder_text(*holder, now) : "free";
    row.claim_tone = holder != nullptr ? Tone::yellow : Tone::green;
    return row;
}

// Column widths for one board: sized to the data, then fitted into the terminal width.
struct Layout {
    std::size_t name = 4;
    std::size_t bar = bar_max;
    std::size_t figures = 0; // "65/80 GiB" after the bar
    std::size_t memory = 6;  // "MEMORY"
    std::size_t util = 4;
    std::size_t temp = 4;
    std::size_t power = 5;
    std::size_t claim = 5;

    [[nodiscard]] std::size_t before_claim() const {
        return index_width + gap + name + gap + memory + gap + util + gap + temp + gap + power +
               gap;
    }
    // The columns an error message may take instead of memory .. power.
    [[nodiscard]] std::size_t figures_span() const {
        return memory + gap + util + gap + temp + gap + power;
    }
};

Layout make_layout(const std::vector<Row>& rows, std::size_t width) {
    Layout layout;
    bool any_bar = false;
    std::size_t plain_memory = 0; // widest "n/a"
    for (const auto& row : rows) {
        layout.name = std::max(layout.name, display_width(row.name));
        if (row.error) {
            continue;
        }
        if (row.used_fraction) {
            any_bar = true;
            layout.figures = std::max(layout.figures, display_width(row.memory));
        } else {
            plain_memory = std::max(plain_memory, display_width(row.memory));
        }
        layout.util = std::max(layout.util, display_width(row.util));
        layout.temp = std::max(layout.temp, display_width(row.temp));
        layout.power = std::max(layout.power, display_width(row.power));
    }
    const auto memory_width = [&](std::size_t bar) {
        return std::max({std::size_t{6}, plain_memory, any_bar ? bar + 3 + layout.figures : 0});
    };
    layout.memory = memory_width(layout.bar);
    if (any_bar && layout.before_claim() + claim_room > width) {
        const std::size_t deficit = layout.before_claim() + claim_room - width;
        layout.bar -= std::min(deficit, bar_max - bar_min);
        layout.memory = memory_width(layout.bar);
    }
    if (layout.before_claim() + claim_room > width && layout.name > name_min) {
        const std::size_t deficit = layout.before_claim() + claim_room - width;
        layout.name -= std::min(deficit, layout.name - name_min);
    }
    layout.claim = width > layout.before_claim() + 6 ? width - layout.before_claim() : 6;
    return layout;
}

std::string memory_cell(const Row& row, const Layout& layout, const Style& style) {
    if (!row.used_fraction) {
        return cell(row.memory, layout.memory, Tone::dim, Align::left, style);
    }
    const double fraction = std::clamp(*row.used_fraction, 0.0, 1.0);
    std::size_t filled =
        static_cast<std::size_t>(std::lround(fraction * static_cast<double>(layout.bar)));
    if (fraction > 0.0) {
        filled = std::max<std::size_t>(filled, 1); // any use at all shows
    }
    filled = std::min(filled, layout.bar);
    std::string out = "[" + paint(repeat("█", filled), row.claim_tone, style) +
                      paint(repeat("░", layout.bar - filled), Tone::dim, style) + "] " +
                      pad_left(row.memory, layout.figures);
    const std::size_t columns = layout.bar + 3 + layout.figures;
    if (columns < layout.memory) {
        out.append(layout.memory - columns, ' ');
    }
    return out;
}

std::string gpu_line(const Row& row, const Layout& layout, const Style& style) {
    const std::string spacer(gap, ' ');
    std::string line =
        cell(row.index, index_width, Tone::bold, Align::right, style) + spacer +
        cell(cut(row.name, layout.name), layout.name, Tone::plain, Align::left, style) + spacer;
    if (row.error) {
        const std::string text = "error: " + *row.error;
        if (display_width(text) > layout.figures_span()) {
            // A long message matters more than the claim column: it takes the rest of the row.
            return line +
                   paint(cut(text, layout.figures_span() + gap + layout.claim), Tone::red, style) +
                   "\n";
        }
        line += cell(text, layout.figures_span(), Tone::red, Align::left, style);
    } else {
        line += memory_cell(row, layout, style) + spacer +
                cell(row.util, layout.util, row.util_tone, Align::right, style) + spacer +
                cell(row.temp, layout.temp, row.temp_tone, Align::right, style) + spacer +
                cell(row.power, layout.power, row.power_tone, Align::right, style);
    }
    // Where "claimed by" does not fit, the colour alone says it; the holder's name matters more.
    const std::string& claim =
        display_width(row.claim) <= layout.claim ? row.claim : row.claim_short;
    return line + spacer + paint(cut(claim, layout.claim), row.claim_tone, style) + "\n";
}

std::string header_line(const Layout& layout, const Style& style) {
    const std::string spacer(gap, ' ');
    const std::string text =
        pad_left("GPU", index_width) + spacer + pad_right("NAME", layout.name) + spacer +
        pad_right("MEMORY", layout.memory) + spacer + pad_left("UTIL", layout.util) + spacer +
        pad_left("TEMP", layout.temp) + spacer + pad_left("POWER", layout.power) + spacer + "CLAIM";
    return paint(text, Tone::bold, style) + "\n";
}

// Biggest memory users first, so that the ones worth seeing survive the cut.
std::vector<gpu::Process> processes_to_show(const std::vector<gpu::Process>& processes) {
    std::vector<gpu::Process> sorted = processes;
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
        return a.used_memory_bytes.value_or(0) > b.used_memory_bytes.value_or(0);
    });
    if (sorted.size() > max_processes_shown) {
        sorted.resize(max_processes_shown);
    }
    return sorted;
}

struct ProcessLayout {
    std::size_t pid = 1;
    std::size_t user = 1;
    std::size_t memory = 1;
};

std::string process_memory(const gpu::Process& p) {
    return p.used_memory_bytes ? units::format_size(*p.used_memory_bytes) : "?";
}

ProcessLayout make_process_layout(const gpu::MachineSnapshot& machine) {
    ProcessLayout layout;
    for (const auto& g : machine.gpus) {
        if (g.error || !g.processes) {
            continue;
        }
        for (const auto& p : processes_to_show(*g.processes)) {
            layout.pid = std::max(layout.pid, std::to_string(p.pid).size());
            layout.user =
                std::max(layout.user,
                         std::min(user_cap, display_width(text::printable(p.user.value_or("?")))));
            layout.memory = std::max(layout.memory, display_width(process_memory(p)));
        }
    }
    return layout;
}

std::string process_lines(const gpu::GpuSnapshot& g,
                          const ProcessLayout& layout,
                          std::size_t width,
                          const Style& style) {
    const std::string indent(index_width + gap, ' ');
    if (!g.processes) {
        return indent + paint("processes: unknown", Tone::dim, style) + "\n";
    }
    const std::vector<gpu::Process> shown = processes_to_show(*g.processes);
    const std::size_t hidden = g.processes->size() - shown.size();
    const std::size_t before_command =
        indent.size() + 2 + 4 + layout.pid + gap + layout.user + gap + layout.memory + gap;
    const std::size_t command_width =
        width > before_command + min_command ? width - before_command : min_command;
    std::string out;
    for (std::size_t i = 0; i < shown.size(); ++i) {
        const gpu::Process& p = shown[i];
        const bool last = i + 1 == shown.size() && hidden == 0;
        const std::string memory = process_memory(p);
        out += indent + (last ? "└ " : "├ ") + "pid " +
               pad_right(std::to_string(p.pid), layout.pid) + "  " +
               cell(cut(text::printable(p.user.value_or("?")), user_cap),
                    layout.user,
                    p.user ? Tone::plain : Tone::dim,
                    Align::left,
                    style) +
               "  " +
               cell(memory,
                    layout.memory,
                    p.used_memory_bytes ? Tone::plain : Tone::dim,
                    Align::right,
                    style) +
               "  " +
               paint(cut(text::printable(p.command.value_or("?")),
                         p.squatter && command_width > 10 ? command_width - 10 : command_width),
                     p.command ? Tone::plain : Tone::dim,
                     style) +
               (p.squatter ? "  " + paint("squatter", Tone::red, style) : std::string()) + "\n";
    }
    if (hidden > 0) {
        out +=
            indent + "└ " +
            paint(fmt::format("… and {} more (--json lists them all)", hidden), Tone::dim, style) +
            "\n";
    }
    return out;
}

std::string queue_table(const std::vector<queue::Ticket>& queue,
                        std::int64_t now,
                        std::size_t width,
                        const Style& style) {
    if (queue.empty()) {
        return {};
    }
    std::string out =
        "\n" + paint(fmt::format("Waiting ({}):", queue.size()), Tone::yellow, style) + "\n";
    unsigned position = 0;
    for (const auto& t : queue) {
        const std::string gpus =
            t.request.max_gpus > t.request.min_gpus
                ? fmt::format("{}-{} GPUs", t.request.min_gpus, t.request.max_gpus)
                : fmt::format("{} GPU{}", t.request.min_gpus, t.request.min_gpus == 1 ? "" : "s");
        const std::string row =
            fmt::format("  {:>3}. {} pid {:<8} {:<10} for {:<8} ",
                        ++position,
                        pad_right(cut(t.user.empty() ? "?" : text::printable(t.user), 10), 10),
                        t.pid,
                        gpus,
                        units::format_duration(units::elapsed(t.since_unix, now)));
        const std::size_t used = display_width(row);
        out += row +
               cut(text::printable(t.command),
                   width > used + min_command ? width - used : min_command) +
               "\n";
    }
    return out;
}

} // namespace

std::string status_table(const gpu::MachineSnapshot& machine,
                         const gpu::ClaimMap& claims,
                         const std::vector<queue::Ticket>& queue,
                         std::int64_t now_unix,
                         const Style& style) {
    const std::size_t width = std::max<std::size_t>(style.width, min_width);
    std::string out =
        paint(fmt::format("NVIDIA driver {}, {} GPU{}",
                          machine.driver_version.empty() ? "?"
                                                         : text::printable(machine.driver_version),
                          machine.gpus.size(),
                          machine.gpus.size() == 1 ? "" : "s"),
              Tone::bold,
              style) +
        "\n";
    if (!machine.gpus.empty()) {
        std::vector<Row> rows;
        rows.reserve(machine.gpus.size());
        for (const auto& g : machine.gpus) {
            rows.push_back(make_row(g, claims, now_unix));
        }
        const Layout layout = make_layout(rows, width);
        const ProcessLayout process_layout = make_process_layout(machine);
        out += header_line(layout, style);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            out += gpu_line(rows[i], layout, style);
            if (!machine.gpus[i].error) {
                out += process_lines(machine.gpus[i], process_layout, width, style);
            }
        }
    }
    out += queue_table(queue, now_unix, width, style);
    return out;
}

} // namespace withgpu::report
