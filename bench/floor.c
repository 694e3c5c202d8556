/* The floor: the least a GPU launcher must do, as a yardstick for with-gpu (issue 9).
 *
 *   floor COMMAND [ARG...]
 *
 * 1. dlopen NVML ($WITH_GPU_NVML_LIBRARY, else libnvidia-ml.so.1) and nvmlInit_v2;
 * 2. read every GPU's UUID and memory, and pick the one with the most free memory;
 * 3. take one flock (LOCK_EX|LOCK_NB) on that GPU's file in the lock directory
 *    ($WITH_GPU_LOCK_DIR, else /tmp/with-gpu; created if missing);
 * 4. posix_spawnp the command with CUDA_VISIBLE_DEVICES set to that GPU's index;
 * 5. wait, and exit with the command's status (or die of its signal).
 *
 * Nothing else: no configuration, no filters, no queue, no holder record, no other user's
 * claims, no /proc. Exit 75 if the GPU's lock is held, 125 on any other failure.
 * The few NVML declarations below are our own, written from the ABI that src/nvml/abi.hpp
 * describes (the same layouts and entry points). */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier): glibc's feature macro */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ; /* NOLINT(cppcoreguidelines-avoid-non-const-global-variables): POSIX */

typedef int nvml_return;
typedef struct nvml_device* nvml_device;

struct nvml_memory_v2 {
    unsigned int version; /* sizeof(struct nvml_memory_v2) | 2 << 24 */
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
};

enum { UUID_SIZE = 96, MAX_GPUS = 64 };

/* NVML's versioned-struct tag for nvml_memory_v2: its size, and version 2 in the top byte. */
#define MEMORY_V2 ((unsigned int)sizeof(struct nvml_memory_v2) | 2U << 24U)

typedef nvml_return (*init_fn)(void);
typedef nvml_return (*shutdown_fn)(void);
typedef nvml_return (*count_fn)(unsigned int*);
typedef nvml_return (*handle_fn)(unsigned int, nvml_device*);
typedef nvml_return (*uuid_fn)(nvml_device, char*, unsigned int);
typedef nvml_return (*memory_fn)(nvml_device, struct nvml_memory_v2*);

static int fail(const char* what) {
    fprintf(stderr, "floor: %s\n", what);
    return 125;
}

static void* symbol(void* library, const char* name) {
    void* address = dlsym(library, name);
    if (address == NULL) {
        fprintf(stderr, "floor: NVML has no %s\n", name);
        exit(125);
    }
    return address;
}

/* ISO C has no cast from dlsym's void* to a function pointer; POSIX guarantees the bytes. */
#define LOAD(function, library, name)                                                              \
    do {                                                                                           \
        void* address = symbol(library, name);                                                     \
        memcpy(&(function), &address, sizeof(function));                                           \
    } while (0)

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor COMMAND [ARG...]\n");
        return 2;
    }
    const char* library_path = getenv("WITH_GPU_NVML_LIBRARY");
    void* nvml =
        dlopen(library_path != NULL && *library_path != '\0' ? library_path : "libnvidia-ml.so.1",
               RTLD_NOW | RTLD_LOCAL);
    if (nvml == NULL) {
        return fail(dlerror());
    }
    init_fn init = NULL;
    shutdown_fn shutdown = NULL;
    count_fn count = NULL;
    handle_fn handle = NULL;
    uuid_fn uuid = NULL;
    memory_fn memory = NULL;
    LOAD(init, nvml, "nvmlInit_v2");
    LOAD(shutdown, nvml, "nvmlShutdown");
    LOAD(count, nvml, "nvmlDeviceGetCount_v2");
    LOAD(handle, nvml, "nvmlDeviceGetHandleByIndex_v2");
    LOAD(uuid, nvml, "nvmlDeviceGetUUID");
    LOAD(memory, nvml, "nvmlDeviceGetMemoryInfo_v2");
    if (init() != 0) {
        return fail("nvmlInit_v2 failed");
    }

    unsigned int gpus = 0;
    if (count(&gpus) != 0 || gpus == 0 || gpus > MAX_GPUS) {
        return fail("no GPU");
    }
    char uuids[MAX_GPUS][UUID_SIZE];
    unsigned long long free_bytes[MAX_GPUS];
    unsigned int best = 0;
    for (unsigned int i = 0; i < gpus; ++i) {
        nvml_device device = NULL;
        struct nvml_memory_v2 figures = {.version = MEMORY_V2};
        if (handle(i, &device) != 0 || uuid(device, uuids[i], UUID_SIZE) != 0 ||
            memory(device, &figures) != 0) {
            return fail("cannot read a GPU");
        }
        free_bytes[i] = figures.free;
        if (free_bytes[i] > free_bytes[best]) {
            best = i;
        }
    }
    shutdown();

    const char* lock_dir = getenv("WITH_GPU_LOCK_DIR");
    if (lock_dir == NULL || *lock_dir == '\0') {
        lock_dir = "/tmp/with-gpu";
    }
    if (mkdir(lock_dir, 01777) != 0 && errno != EEXIST) {
        return fail("cannot create the lock directory");
    }
    char lock_path[4096];
    snprintf(lock_path, sizeof lock_path, "%s/floor-%s.lock", lock_dir, uuids[best]);
    const int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lock < 0) {
        return fail("cannot open the lock file");
    }
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "floor: GPU %u is taken\n", best);
        return 75;
    }

    /* The environment with CUDA_VISIBLE_DEVICES replaced. */
    size_t variables = 0;
    while (environ[variables] != NULL) {
        ++variables;
    }
    char** envp = calloc(variables + 2, sizeof *envp);
    if (envp == NULL) {
        return fail("out of memory");
    }
    size_t kept = 0;
    for (size_t i = 0; i < variables; ++i) {
        if (strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21) != 0) {
            envp[kept++] = environ[i];
        }
    }
    char visible[48];
    snprintf(visible, sizeof visible, "CUDA_VISIBLE_DEVICES=%u", best);
    envp[kept] = visible;

    pid_t child = 0;
    const int spawned = posix_spawnp(&child, argv[1], NULL, NULL, argv + 1, envp);
    if (spawned != 0) {
        fprintf(stderr, "floor: %s: %s\n", argv[1], strerror(spawned));
        return spawned == ENOENT ? 127 : 126;
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            return fail("waitpid failed");
        }
    }
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
