#include "app/main.hpp"

int main(int argc, char** argv) {
    return withgpu::app::main(argc, argv);
}
