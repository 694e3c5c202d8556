#include "term/rules.hpp"

namespace withgpu::term {

namespace {

// Narrower than this, a reported width is more likely wrong than true.
constexpr unsigned min_believed_columns = 11;

} // namespace

bool color_allowed(const std::optional<std::string>& no_color,
                   const std::optional<std::string>& term) {
    return (!no_color || no_color->empty()) && (!term || *term != "dumb");
}

report::Style style_for(bool terminal, bool colors_allowed, std::optional<unsigned> columns) {
    report::Style style;
    style.color = terminal && colors_allowed;
    style.width = columns.value_or(fallback_width);
    return style;
}

std::string fit_to_redraw(std::string_view line, std::optional<unsigned> columns) {
    if (!columns || *columns < min_believed_columns) {
        return std::string(line);
    }
    return report::cut(line, *columns - 1U);
}

} // namespace withgpu::term
