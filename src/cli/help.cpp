#include "cli/help.hpp"

#include <algorithm>

namespace withgpu::cli {

namespace {

constexpr std::string_view k_description =
    "Usage: with-gpu [OPTIONS] [--] COMMAND [ARGS...]\n"
    "       with-gpu --status [--json | --watch [INTERVAL]]\n"
    "       with-gpu --dry-run [--json] [OPTIONS]\n"
    "       with-gpu --slurm-gres-conf | --slurm-prolog | --slurm-epilog\n"
    "\n"
    "Run a command on GPUs that are really free, claimed so that no other with-gpu job\n"
    "can take them.";

constexpr std::string_view k_examples = R"(Examples:
  Run on the best free GPU (most free memory, fewest processes):
    with-gpu python train.py
  Two GPUs with at least 20 GiB free each and at most 10% utilisation:
    with-gpu -n 2 --min-memory 20G --max-util 10 python train.py
  Only idle A100s, never GPU 0:
    with-gpu --gpu-type A100 --strict --require-idle --exclude 0 ./run.sh
  As many GPUs as are free, between 2 and 4:
    with-gpu --min-gpus 2 --max-gpus 4 torchrun train.py
  Pass options to the command after --:
    with-gpu -- python -m pip list
  Wait in line until two GPUs are free, for at most 2 hours:
    with-gpu --wait --timeout 2h -n 2 python train.py
  Use a profile from your configuration file:
    with-gpu --profile llm python serve.py
  See who uses which GPU, or why a request would not be met:
    with-gpu --status
    with-gpu --dry-run -n 2 --min-memory 40G

The command gets CUDA_VISIBLE_DEVICES (NVML indices), CUDA_DEVICE_ORDER=PCI_BUS_ID and
WITH_GPU_UUIDS. An inherited CUDA_VISIBLE_DEVICES limits the candidates. Inside a SLURM
job or step only its GPUs (SLURM_STEP_GPUS / SLURM_JOB_GPUS) are used, under SLURM's ids.

Exit status: the command's own (death by signal S is passed on); 2 usage error; 75 no
suitable GPU is free now; 124 --timeout expired; 125 with-gpu failed (no NVIDIA driver,
unsafe lock directory, a request that can never be met); 126 command not executable;
127 command not found.

Settings come from /etc/with-gpu/config.toml, then ~/.config/with-gpu/config.toml
([defaults] and [profiles.NAME]), then WITH_GPU_* variables (WITH_GPU_MIN_MEMORY,
WITH_GPU_LOCK_DIR, ...), then flags. See the effective ones with --show-config.)";

// Breaks `text` into lines of at most `columns` characters, at spaces only.
std::string wrap(std::string_view text, std::size_t columns) {
    std::string wrapped;
    std::size_t line_length = 0;
    while (!text.empty()) {
        const std::size_t end = std::min(text.find(' '), text.size());
        const std::string_view word = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (word.empty()) {
            continue;
        }
        if (line_length > 0 && line_length + 1 + word.size() > columns) {
            wrapped += '\n';
            line_length = 0;
        } else if (line_length > 0) {
            wrapped += ' ';
            ++line_length;
        }
        wrapped += word;
        line_length += word.size();
    }
    return wrapped;
}

// Refills each paragraph of prose (lines that are not indented, up to a blank or an indented
// line) to `columns`; indented lines (usage, examples) and blank lines stay as they are.
std::string reflow(std::string_view text, std::size_t columns) {
    std::string out;
    std::string paragraph;
    const auto flush = [&] {
        if (!paragraph.empty()) {
            out += wrap(paragraph, columns) + '\n';
            paragraph.clear();
        }
    };
    while (!text.empty()) {
        const std::size_t end = std::min(text.find('\n'), text.size());
        const std::string_view line = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (line.empty() || line.front() == ' ') {
            flush();
            out += std::string(line) + '\n';
        } else {
            paragraph += (paragraph.empty() ? "" : " ") + std::string(line);
        }
    }
    flush();
    return out;
}

// --help as one text of at most 80 columns: the description (usage lines included), the
// option groups in the given order, one blank line apart, and the footer.
// (CLI11's own layout adds a second usage line, an "Options:" group for --help, and blank
// lines after every group.)
class HelpFormatter final : public CLI::Formatter {
  public:
    static constexpr std::size_t width = 80;

    explicit HelpFormatter(std::vector<std::string> group_order)
        : m_group_order(std::move(group_order)) {}

    std::string make_help(const CLI::App* app,
                          std::string /*name*/,
                          CLI::AppFormatMode /*mode*/) const override {
        std::string text = reflow(app->get_description(), width);
        std::vector<std::string> groups = m_group_order;
        for (const std::string& group : app->get_groups()) { // any others in their own order
            if (std::find(groups.begin(), groups.end(), group) == groups.end()) {
                groups.push_back(group);
            }
        }
        for (const std::string& group : groups) {
            const auto options = app->get_options([&group](const CLI::Option* option) {
                return option->get_group() == group && option->nonpositional();
            });
            if (!group.empty() && !options.empty()) {
                text += make_group(group, false, options); // "\nGROUP:\n" and one line each
            }
        }
        return text + "\n" + reflow(app->get_footer(), width);
    }

    // "--hold{0.25}" is how CLI11 spells a flag's value when given alone; --help shows
    // "--hold[=FRACTION|SIZE]".
    std::string make_option_name(const CLI::Option* option, bool is_positional) const override {
        std::string name = CLI::Formatter::make_option_name(option, is_positional);
        for (std::size_t open = name.find('{'); open != std::string::npos; open = name.find('{')) {
            name.erase(open, name.find('}', open) - open + 1);
        }
        return name;
    }
    std::string make_option_opts(const CLI::Option* option) const override {
        std::string opts = CLI::Formatter::make_option_opts(option);
        if (opts.rfind(" [=", 0) == 0) {
            opts.erase(0, 1);
        }
        return opts;
    }

    // CLI11 indents the lines after each '\n' of a description to the description column.
    std::string make_option_desc(const CLI::Option* option) const override {
        return wrap(option->get_description(), width - get_column_width());
    }

  private:
    std::vector<std::string> m_group_order;
};

} // namespace

std::string_view help_description() {
    return k_description;
}

std::string_view help_footer() {
    return k_examples;
}

std::shared_ptr<CLI::Formatter> help_formatter(std::vector<std::string> group_order) {
    auto formatter = std::make_shared<HelpFormatter>(std::move(group_order));
    formatter->column_width(28);
    return formatter;
}

} // namespace withgpu::cli
