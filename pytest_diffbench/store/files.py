"""Writing files: atomically (a reader sees the old file or the new one, never half of either)
and deterministically (same content, same bytes)."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, BinaryIO, Iterator

if TYPE_CHECKING:
    from PIL import Image

#: Suffix of the temporary file :func:`atomic_write_bytes` renames into place: diffbench's own, so
#: the start-up clean-up (:func:`pytest_diffbench.store.journal.remove_temp_files`) never takes
#: another program's ``.*.tmp`` file for one of diffbench's.
TMP_SUFFIX = ".diffbench-tmp"
#: Mode of written files before the umask (as ``open()`` creates them).
FILE_MODE = 0o666


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename (see
    :func:`atomic_writer`). Baselines and results are never left half-written."""
    with atomic_writer(path) as handle:
        handle.write(data)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file (opened ``w+b``, seekable: a zip can be written into it as it is built) that
    replaces ``path`` when the block ends, and is removed when the block raises.

    It is a temporary file in the same folder (named ``.<name>.<random><TMP_SUFFIX>``, which the
    start-up clean-up of killed runs recognises), flushed and fsynced, then renamed over ``path``:
    the rename is atomic on POSIX and Windows when both names are on one file system, which a
    sibling guarantees, so a reader sees the old file or the new one, never half of either.
    Raises OSError when the folder cannot be made or the file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE & ~current_umask())  # mkstemp's 0600 would hide the file from teammates
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def regular_files(tree: Path) -> tuple[list[str], bool]:
    """The regular files under ``tree`` reached without following a symbolic link, as POSIX paths
    relative to it, in one walk; and whether that is all of them: False when the walk met a
    symbolic link (``tree`` itself included) or a folder it could not read. ([], True) when
    ``tree`` is not there."""
    if tree.is_symlink():
        return [], False
    found: list[str] = []
    complete = True
    folders = [""]
    while folders:
        relative = folders.pop()
        try:
            with os.scandir(tree / relative if relative else tree) as entries:
                for entry in entries:
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_symlink():
                        complete = False
                    elif entry.is_dir(follow_symlinks=False):
                        folders.append(name)
                    elif entry.is_file(follow_symlinks=False):
                        found.append(name)
        except FileNotFoundError:
            complete = complete and not relative  # ``tree`` not there: no file; a folder gone: unknown
        except OSError:
            complete = False
    return found, complete


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux, where
    setting and restoring it would race with other threads), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class PathEscapeError(ValueError):
    """A path that would leave its root folder (absolute, ``..``, or through a symbolic link)."""


def inside(root: Path, relative: "str | PurePath") -> Path:
    """``root / relative``, refused when it would leave ``root``.

    ``relative`` must be relative, without ``..`` or empty parts, and no folder or file on the way
    from ``root`` to the target (the target included) may be a symbolic link: a crafted run
    folder, results.csv or a symlink committed under ``baselines/`` cannot make diffbench read or
    write elsewhere. ``root`` itself may be a link (the user chose it). The target need not exist.

    Raises :class:`PathEscapeError` naming ``relative`` and ``root``.
    """
    root = Path(root)
    text = str(relative)
    parts = PurePath(text).parts
    if not text or PurePath(text).is_absolute() or ".." in parts or "\x00" in text:
        raise PathEscapeError(f"{text!r} is not a path inside {root}")
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise PathEscapeError(f"{here} is a symbolic link; diffbench does not follow links out of {root}")
    return here


def letter_case_twin(root: Path, relative: str) -> tuple[str, Path] | None:
    """(part of ``relative``, existing entry) for the first part of ``relative`` (``/``-separated)
    that is missing under its parent in ``root`` while an entry differing only in letter case is
    there: macOS and Windows take the two for one. None when there is none (a missing parent ends
    the search)."""
    parent = root
    for part in relative.split("/"):
        try:
            names = os.listdir(parent)
        except OSError:
            return None
        if part not in names:
            twins = sorted(name for name in names if name.casefold() == part.casefold())
            return (part, parent / twins[0]) if twins else None
        parent = parent / part
    return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with ``\\n`` line endings atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


#: zlib level of every PNG diffbench writes: for speed. Measured by ``benchmarks/png_levels.py`` on
#: scikit-image's photos against Pillow's default 6: at 256x256 px 12 ms against 38 ms per image
#: (0.32x) for 1.09x the bytes, at 1024x1024 px 0.52x the time for 1.16x the bytes; levels 2 to 5
#: save at most 15% of the bytes for as much time again, 7 to 9 take 1.3x to 6x level 6's time,
#: and level 0 (no compression) writes 1.9x to 2.9x the bytes. Bytes are identical from run to run at every level (same zlib). Baselines
#: written at another level still read and pass: a baseline is judged by its pixels, and its
#: sidecar vouches for its own bytes.
PNG_COMPRESS_LEVEL = 1


def encode_png(image: "Image.Image") -> bytes:
    """PNG bytes that depend only on the pixels: no timestamps, no text chunks, compression level
    :data:`PNG_COMPRESS_LEVEL`."""
    buffer = io.BytesIO()
    if image.info:  # PIL would otherwise copy e.g. an ICC profile from image.info into the file
        image = image.copy()
        image.info = {}
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
