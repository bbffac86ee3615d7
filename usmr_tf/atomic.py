"""Atomic file writes: every output of usmr-tf is written to a temp file beside its target and
renamed onto it only when complete, so a failure or a kill never leaves a half-written file."""

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_path(path, mode=0o644):
    """Yields a temp path beside ``path`` with the same suffixes (``.nii.gz``, ``.weights.h5``,
    ``.keras``, so writers that check the name accept it); on success it gets ``mode`` (mkstemp
    makes 0600; a TF Serving container may run as another user) and is renamed onto ``path``.
    On any error the temp file is removed and ``path`` is left as it was."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix="".join(pathlib.Path(path.name).suffixes))
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def write_bytes_atomic(path, data):
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return pathlib.Path(path)
