// Test helper standing in for a job that inherited claim descriptors: checks that each
// descriptor named on the command line is open, says "ready" on stdout, then holds them
// until stdin reaches end of file (or it is killed).
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const int fd = std::atoi(argv[i]);
        if (::fcntl(fd, F_GETFD) == -1) {
            std::fprintf(stderr, "hold_fd: descriptor %d was not inherited\n", fd);
            return 3;
        }
    }
    const std::string ready = "ready\n";
    if (::write(STDOUT_FILENO, ready.data(), ready.size()) != static_cast<ssize_t>(ready.size())) {
        return 4;
    }
    char byte = 0;
    while (::read(STDIN_FILENO, &byte, 1) > 0) {
    }
    return 0;
}
