// with_gpu._native: the C++ library (include/with_gpu/with_gpu.hpp) for Python. The Python
// package (python/with_gpu) turns keyword arguments into settings, raises its exceptions
// and applies the device-numbering rules; this file only crosses the language boundary.
// Waiting releases the GIL; a signal that interrupts the wait runs Python's handlers, and an
// exception they raise (KeyboardInterrupt) ends the wait and is raised from acquire().
#include "with_gpu/with_gpu.hpp"

#include <fstream>
#include <optional>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

using Settings = std::vector<std::pair<std::string, std::string>>;

with_gpu::Request request_of(const Settings& settings, const std::optional<std::string>& profile) {
    with_gpu::Request request;
    for (const auto& [name, text] : settings) {
        request.set(name, text);
    }
    if (profile) {
        request.profile(*profile);
    }
    return request;
}

// with_gpu.errors' class for a kind of failure.
py::object exception_class(with_gpu::ErrorKind kind) {
    const py::module_ errors = py::module_::import("with_gpu.errors");
    switch (kind) {
    case with_gpu::ErrorKind::usage:
        return errors.attr("UsageError");
    case with_gpu::ErrorKind::no_gpu_now:
        return errors.attr("NoGpuAvailable");
    case with_gpu::ErrorKind::timeout:
        return errors.attr("Timeout");
    case with_gpu::ErrorKind::impossible:
        return errors.attr("Impossible");
    case with_gpu::ErrorKind::driver:
        return errors.attr("NvmlError");
    case with_gpu::ErrorKind::cancelled:
        return errors.attr("Cancelled");
    case with_gpu::ErrorKind::failed:
        break;
    }
    return errors.attr("Error");
}

// A Python exception raised by a signal handler while the wait was woken (the GIL held then);
// re-raised once the native call has unwound.
struct PendingPythonError {
    std::optional<py::error_already_set> error;
};

class NativeLease {
  public:
    explicit NativeLease(with_gpu::Lease lease) : m_lease(std::move(lease)) {}
    [[nodiscard]] std::vector<py::tuple> gpus() const {
        std::vector<py::tuple> out;
        for (const auto& gpu : m_lease.gpus()) {
            out.push_back(py::make_tuple(gpu.index, gpu.uuid, gpu.cuda_id));
        }
        return out;
    }
    [[nodiscard]] bool held() const { return m_lease.held(); }
    void release() { m_lease.release(); }

  private:
    with_gpu::Lease m_lease;
};

NativeLease acquire(const Settings& settings,
                    const std::optional<std::string>& profile,
                    const std::function<void(const std::string&)>& on_progress,
                    const std::function<void(const std::string&)>& on_note) {
    const with_gpu::Request request = request_of(settings, profile);
    PendingPythonError pending;
    with_gpu::WaitOptions wait;
    // Called from the waiting thread with the GIL released: take it for Python's sake.
    wait.on_progress = [&](const std::string& line) {
        const py::gil_scoped_acquire gil;
        if (on_progress) {
            on_progress(line);
        }
    };
    wait.on_note = [&](const std::string& note) {
        const py::gil_scoped_acquire gil;
        if (on_note) {
            on_note(note);
        }
    };
    wait.cancel_requested = [&]() {
        const py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
            pending.error.emplace(); // takes the exception the handler raised
            return true;
        }
        return false;
    };
    // A Ctrl-C that lands just before the wait sleeps interrupts nothing: ask now and then.
    wait.check_every = std::chrono::milliseconds(200);
    std::optional<with_gpu::Lease> lease;
    {
        const py::gil_scoped_release released;
        try {
            lease.emplace(with_gpu::acquire(request, wait));
        } catch (const with_gpu::Error& e) {
            if (e.kind() != with_gpu::ErrorKind::cancelled || !pending.error) {
                throw;
            }
        }
    }
    if (pending.error) {
        throw std::move(*pending.error);
    }
    return NativeLease(std::move(*lease));
}

// Is the CUDA driver library mapped into this process? Then CUDA may be initialised, and
// CUDA_VISIBLE_DEVICES can no longer change what it sees.
bool cuda_loaded() {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        if (line.find("/libcuda.so") != std::string::npos) {
            return true;
        }
    }
    return false;
}

py::list settings_info() {
    py::list out;
    for (const auto& s : with_gpu::settings()) {
        py::dict d;
        d["name"] = s.name;
        d["kind"] = s.kind;
        d["default"] = s.default_text.empty() ? py::object(py::none()) : py::str(s.default_text);
        d["help"] = s.help;
        d["example"] = s.example;
        out.append(d);
    }
    return out;
}

} // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "with-gpu's C++ library; use the with_gpu package instead of this module.";
    m.attr("version") = std::string(with_gpu::version());

    // NOLINTNEXTLINE(performance-unnecessary-value-param): pybind11's translator signature
    py::register_exception_translator([](std::exception_ptr thrown) {
        try {
            if (thrown) {
                std::rethrow_exception(thrown);
            }
        } catch (const with_gpu::Error& e) {
            const py::object instance = exception_class(e.kind())(e.what(), e.hint());
            PyErr_SetObject(instance.get_type().ptr(), instance.ptr());
        }
    });

    py::class_<NativeLease>(m, "Lease")
        .def_property_readonly("gpus", &NativeLease::gpus, "(index, uuid, cuda_id) per GPU")
        .def_property_readonly("held", &NativeLease::held)
        .def("release", &NativeLease::release);

    m.def("acquire",
          &acquire,
          py::arg("settings"),
          py::arg("profile"),
          py::arg("on_progress"),
          py::arg("on_note"));
    m.def(
        "status_json",
        [](const Settings& settings, const std::optional<std::string>& profile) {
            const with_gpu::Request request = request_of(settings, profile);
            const py::gil_scoped_release released;
            return with_gpu::status_json(request);
        },
        py::arg("settings"),
        py::arg("profile"));
    m.def(
        "would_choose_json",
        [](const Settings& settings, const std::optional<std::string>& profile) {
            const with_gpu::Request request = request_of(settings, profile);
            const py::gil_scoped_release released;
            return with_gpu::would_choose_json(request);
        },
        py::arg("settings"),
        py::arg("profile"));
    m.def("settings", &settings_info);
    m.def("cuda_loaded", &cuda_loaded);
}
