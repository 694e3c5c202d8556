// The text of --help: usage lines, the option groups laid out within 80 columns, examples.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace withgpu::cli {

[[nodiscard]] std::string_view help_description(); // usage lines and what with-gpu does
[[nodiscard]] std::string_view help_footer();      // examples, environment, exit status

// Lays out --help as one designed text: the groups in `group_order` (then any others in the
// order of their first option), one blank line apart, descriptions wrapped at spaces. CLI11's own
// layout would add a second usage line, an "Options:" group for --help and blank lines after every
// group.
[[nodiscard]] std::shared_ptr<CLI::Formatter> help_formatter(std::vector<std::string> group_order);

} // namespace withgpu::cli
