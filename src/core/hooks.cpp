#include "core/hooks.hpp"

#include <algorithm>

namespace withgpu::core {

void Notes::pass_on(std::vector<std::string>& fresh, Progress& progress) {
    for (auto& note : fresh) {
        if (std::find(m_seen.begin(), m_seen.end(), note) == m_seen.end()) {
            progress.note("note: " + note);
            m_seen.push_back(std::move(note));
        }
    }
    fresh.clear();
}

} // namespace withgpu::core
