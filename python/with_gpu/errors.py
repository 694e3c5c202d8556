"""The exceptions of with_gpu. Every one of them is a with_gpu.Error."""


class Error(Exception):
    """Something with-gpu could not do. `hint` says what you can do about it (may be "")."""

    #: The `with-gpu` command's exit status for the same failure.
    exit_code = 125

    def __init__(self, message, hint=""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class UsageError(Error, ValueError):
    """A bad setting or value: an unknown keyword, "20Q" for a size, a bad configuration
    file. The message names the setting (or file, line and column)."""

    exit_code = 2


class NoGpuAvailable(Error):
    """Nothing suitable is free now, and the request does not wait (wait=False, no
    timeout). The message says why each GPU was not taken."""

    exit_code = 75


class Timeout(Error, TimeoutError):
    """The request's timeout passed while it waited in the queue."""

    exit_code = 124


class Impossible(Error):
    """The request can never be met on this machine (more GPUs than there are, more memory
    than any card has, a model that is not there ...)."""


class NvmlError(Error):
    """NVML (the NVIDIA driver's management library) cannot be loaded or read."""


class Cancelled(Error):
    """The wait was ended by the caller (KeyboardInterrupt is raised instead when Ctrl-C
    ended it)."""

    exit_code = 130


__all__ = ["Error", "UsageError", "NoGpuAvailable", "Timeout", "Impossible", "NvmlError",
           "Cancelled"]
