"""Quiet start-up for `usmr` and the demo: no TensorFlow/CUDA/absl noise on stderr.

TensorFlow 2.21 writes its start-up lines (oneDNN notice, "Could not find cuda drivers",
``cpu_feature_guard``, "failed call to cuInit", "All log messages before
absl::InitializeLog()") from C++ before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` alone does not hide them. `install()` therefore

* sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless already set) before TensorFlow is imported, and
* wraps the first ``import tensorflow`` (and the platform initialisation that follows, where
  cuInit runs) so that file descriptor 2 goes to a temporary file meanwhile; afterwards the
  known start-up lines are dropped and everything else (Python warnings, real errors) is
  written to stderr as it came.

Nothing is imported here: ``usmr --help`` and commands without TensorFlow stay fast.
``USMR_VERBOSE=1`` (or ``usmr --verbose``) turns all of this off and shows TensorFlow's own
logging.
"""

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

VERBOSE_ENV = "USMR_VERBOSE"

# C++ source files whose start-up lines are noise on a CPU machine (and on a GPU machine:
# device and plugin registration). Errors from any other file are kept.
_NOISE_FILES = (
    "port.cc", "cudart_stub.cc", "cuda_platform.cc", "cuda_executor.cc", "cuda_dnn.cc",
    "cuda_fft.cc", "cuda_blas.cc", "cpu_feature_guard.cc", "cuda_diagnostics.cc",
    "dso_loader.cc", "cuda_driver.cc", "gpu_device.cc", "computation_placer.cc",
    "cpu_utils.cc", "xla_bridge.cc", "service.cc", "se_gpu_pjrt_client.cc",
)
_NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:. ]+\d+ (?:" + "|".join(re.escape(f) for f in _NOISE_FILES) + r"):\d+\]"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
    r")")


def verbose_requested(env=None):
    value = (os.environ if env is None else env).get(VERBOSE_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def filter_noise(text):
    """`text` without TensorFlow's start-up lines (the rest unchanged, in order)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not _NOISE.match(line))


class _Capture:
    """Sends fd 2 to a temporary file; on exit replays it to stderr without the noise."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - restoring fd 2 matters more
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        text = filter_noise(self._file.read().decode("utf-8", "replace"))
        self._file.close()
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        return False


def filtered_stderr():
    """A context manager hiding the start-up lines written to fd 2 inside it (e.g. when a
    TFLite interpreter is created); does nothing in verbose mode."""
    if verbose_requested():
        import contextlib

        return contextlib.nullcontext()
    return _Capture()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with _Capture():
            self._loader.exec_module(module)
            try:  # platform initialisation (cuInit) happens here, not at import
                module.config.list_physical_devices()
            except Exception:  # noqa: BLE001 - TensorFlow reports device problems itself later
                pass

    def __getattr__(self, name):  # is_package, get_code, get_resource_reader, ...
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietFinder()


def uninstall():
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install(verbose=None):
    """Quiet TensorFlow start-up unless `verbose` (default: ``$USMR_VERBOSE``).

    Call before TensorFlow is imported; once it is, only the log level of later messages
    can still be changed. Returns True when quiet mode is on.
    """
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # subprocesses (e.g. converters) inherit it
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        uninstall()
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return True
