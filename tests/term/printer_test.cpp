// What the printer writes, byte for byte: to a file (not a terminal) and to a pseudo-terminal
// of a known width (raw, so that the bytes arrive as written).
#include "term/printer.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <poll.h>
#include <pty.h>
#include <stdexcept>
#include <string>
#include <termios.h>
#include <unistd.h>

namespace withgpu::term {
namespace {

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

File adopt(int fd, const char* mode) {
    std::FILE* file = ::fdopen(fd, mode);
    if (file == nullptr) {
        ::close(fd);
        throw std::runtime_error("fdopen failed");
    }
    return {file, &std::fclose};
}

// A temporary file stands for a pipe: not a terminal.
File temp_file() {
    return {std::tmpfile(), &std::fclose};
}

std::string contents(std::FILE* file) {
    std::rewind(file);
    std::string text;
    for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) {
        text += static_cast<char>(c);
    }
    return text;
}

struct Pty {
    File controller; // what a terminal emulator reads
    File terminal;   // what the program writes to
};

Pty open_pty(unsigned short columns) {
    int controller = -1;
    int terminal = -1;
    termios raw{};
    ::cfmakeraw(&raw);
    winsize size{};
    size.ws_col = columns;
    size.ws_row = 24;
    if (::openpty(&controller, &terminal, nullptr, &raw, &size) != 0) {
        throw std::runtime_error("openpty failed");
    }
    File terminal_file = adopt(terminal, "w");
    return {adopt(controller, "r"), std::move(terminal_file)};
}

// Everything written to the terminal so far (it arrives on the other side soon after).
std::string drain(std::FILE* controller) {
    std::string bytes;
    pollfd ready{::fileno(controller), POLLIN, 0};
    while (::poll(&ready, 1, 200) > 0) {
        char buffer[256];
        const ssize_t n = ::read(ready.fd, buffer, sizeof buffer);
        if (n > 0) {
            bytes.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    return bytes;
}

TEST(PrinterOffATerminal, WritesPlainLinesAndNoEscapeSequence) {
    const File file = temp_file();
    Printer printer(file.get(), /*colors_allowed=*/true);
    EXPECT_FALSE(printer.is_terminal());
    EXPECT_EQ(printer.columns(), std::nullopt);
    EXPECT_FALSE(printer.style().color);
    EXPECT_EQ(printer.style().width, 100U);
    {
        const HiddenCursor cursor(printer);
        printer.redraw_line("waiting for 1 GPU, 1st in queue");
        printer.print_line("chose GPU 0");
        printer.redraw_screen("frame 1\n");
        printer.redraw_screen("frame 2\n");
        printer.print("as is");
    }
    EXPECT_EQ(contents(file.get()),
              "waiting for 1 GPU, 1st in queue\nchose GPU 0\n\nframe 1\n\nframe 2\nas is\n");
}

TEST(PrinterOnATerminal, KnowsItsWidthAndColour) {
    const Pty pty = open_pty(72);
    const Printer coloured(pty.terminal.get(), true);
    EXPECT_TRUE(coloured.is_terminal());
    EXPECT_EQ(coloured.columns(), 72U);
    EXPECT_TRUE(coloured.style().color);
    EXPECT_EQ(coloured.style().width, 72U);
    EXPECT_FALSE(Printer(pty.terminal.get(), false).style().color);
}

TEST(PrinterOnATerminal, RedrawsOneLineInPlaceCutToTheWidth) {
    const Pty pty = open_pty(20);
    Printer printer(pty.terminal.get(), false);
    printer.print_line("before");
    printer.redraw_line("with-gpu: waiting for 2 GPUs");
    printer.redraw_line("with-gpu: short");
    printer.print_line("with-gpu: chose GPU 1");
    printer.print_line("with-gpu: note");
    // Once a line was redrawn, every printed line clears the current one first.
    EXPECT_EQ(drain(pty.controller.get()),
              "before\n"
              "\r\033[Kwith-gpu: waiting …" // 19 columns of 20
              "\r\033[Kwith-gpu: short"
              "\r\033[Kwith-gpu: chose GPU 1\n"
              "\r\033[Kwith-gpu: note\n");
}

TEST(PrinterOnATerminal, RedrawsTheScreenWithTheCursorHidden) {
    const Pty pty = open_pty(80);
    Printer printer(pty.terminal.get(), true);
    {
        const HiddenCursor cursor(printer);
        printer.redraw_screen("frame 1\n");
        printer.redraw_screen("frame 2\n");
    }
    EXPECT_EQ(drain(pty.controller.get()),
              "\033[?25l\033[H\033[2Jframe 1\n\033[H\033[2Jframe 2\n\033[?25h\n");
}

} // namespace
} // namespace withgpu::term
