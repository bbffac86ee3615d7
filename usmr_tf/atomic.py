"""Atomic file writes: every output of usmr-tf is written to a temp file beside its target and
renamed onto it only when complete, so a failure or a kill never leaves a half-written file.

A kill (SIGKILL, OOM) can leave a hidden temp file (``.NAME.XXXX.SUFFIX``) beside the target;
`remove_stale_temps` deletes them. ``durable=True`` also fsyncs the file and its folder, so the
rename survives a power cut or a machine crash, not just the death of the process.
"""

import contextlib
import errno
import os
import pathlib
import re
import shutil
import tempfile


def fsync_dir(folder):
    """Flushes a folder's entries (a rename in it) to disk; a no-op where that is unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path, mode=0o644, durable=False):
    """Yields a temp path beside ``path`` with the same suffixes (``.nii.gz``, ``.weights.h5``,
    ``.keras``, so writers that check the name accept it); on success it gets ``mode`` (mkstemp
    makes 0600; a TF Serving container may run as another user) and is renamed onto ``path``.
    On any error the temp file is removed and ``path`` is left as it was. ``durable``: fsync
    the file before and its folder after the rename."""
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                   suffix="".join(pathlib.Path(path.name).suffixes))
    except OSError as exc:
        raise cannot_write(path, exc) from None
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        try:
            os.chmod(tmp, mode)
            if durable:
                _fsync_file(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise cannot_write(path, exc) from None
        if durable:
            fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def cannot_write(path, exc):
    """An `OSError` for `path` (the output the user named, not a temp file or a parent), saying
    why: ``cannot write (Not a directory: /out/file_in_the_way)``."""
    where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
    if where and pathlib.Path(str(exc.filename)).name.startswith(f".{pathlib.Path(path).name}."):
        where = ""  # our own temp file: the path says enough
    error = OSError(exc.errno, f"cannot write ({exc.strerror or exc}{where})", str(path))
    return error


def write_text_atomic(path, text, durable=False):
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def write_bytes_atomic(path, data, durable=False):
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return pathlib.Path(path)


def swap_in_dir(new, target, aside, attempts=8):
    """Renames the folder ``new`` to ``target``. An existing ``target`` is first renamed into
    ``aside`` (a folder of this writer's own); when another writer's folder lands on
    ``target`` between the two renames it is moved aside too and the rename tried again, so
    of writers racing for one target the last one wins and none fails. Returns the folders
    moved into ``aside``, oldest first (the caller removes them). When it fails, the newest
    folder moved aside is put back on ``target`` (if nothing else is there) before it raises."""
    moved = []
    try:
        for attempt in range(attempts):
            old = pathlib.Path(aside) / f"old-{attempt}"
            try:
                os.rename(target, old)
                moved.append(old)
            except FileNotFoundError:
                pass
            try:
                os.rename(new, target)
                return moved
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == attempts - 1:
                    raise
    except BaseException:
        if moved and not os.path.lexists(target):
            os.rename(moved[-1], target)
        raise
    return moved


def replace_dir(target, write, prefix=None):
    """Writes the folder ``target`` with ``write(path)`` into a staging folder next to it,
    then replaces ``target`` by renames (`swap_in_dir`): a failed ``write`` leaves ``target``
    as it was and nothing half-written; two writers of one target both succeed, the last
    one's folder stays. Returns ``target``."""
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent,
                                            prefix=prefix or f".{target.name}."))
    try:
        write(staging / "out")
        swap_in_dir(staging / "out", target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_stale_temps(folder):
    """Deletes the temp files a killed `atomic_path` left in ``folder``; returns how many.
    Call it only where no other writer is active in ``folder``."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if is_temp_name(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>(?:\.[^.]+)*)$")


def is_temp_name(name):
    """True for the names `atomic_path` gives its temp files: ``.TARGET.XXXXXXXX.SUFFIXES``."""
    match = _TEMP.match(name)
    return bool(match) and match["suffix"] == "".join(
        pathlib.Path(match["target"]).suffixes)


@contextlib.contextmanager
def exclusive(path):
    """Holds an exclusive lock for the output ``path`` (``fcntl.flock`` on ``.NAME.lock`` beside
    it) so that two processes writing the same output take turns; the lock file is removed
    on release. Local file systems only (on NFS, flock may not exclude other machines)."""
    import fcntl

    path = pathlib.Path(path)
    lock = path.with_name(f".{path.name}.lock")
    missing = 0
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError as exc:
            # another run removed the (empty) folder it had made between our mkdir and open:
            # make it again; once our lock file is in it, nobody can remove it under us
            missing += 1
            if missing > 5:
                raise cannot_write(path, exc) from None
            continue
        except OSError as exc:
            raise cannot_write(path, exc) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break  # still the lock file: ours (not one a previous holder removed)
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        finally:
            os.close(fd)
