"""Version-pinned baselines: one PNG and one JSON sidecar per case, under a pin key.

Layout: ``<baseline_dir>/<pin key>/<test file without .py>/<class>/<test>/<case id>.png`` and the
same path with ``.json``. The pin key (``cpu-float32``, ``cuda-float16`` by default) lets CPU CI
and GPU desks keep their baselines side by side. The sidecar
(:class:`~pytest_diffbench.spec.sidecar.Sidecar`) is written here and nowhere else.

Reading (:meth:`BaselineStore.read`) validates the whole pair: both files are plain files inside
the baseline folder (no symbolic link on the way), the PNG is a complete PNG that decodes, the
sidecar matches its schema, and the sidecar vouches for the image: the PNG's bytes are the ones
its ``image_sha256`` records, or its decoded pixels are the ones its ``pixels_sha256`` records (so
a losslessly re-encoded PNG is still the baseline). Any damage is one :class:`BaselineError`
naming the file and the fault; both update modes rewrite such a pair. What stands where a file or
folder of the pair goes and is neither (a folder or a FIFO where a file goes, a file where a folder
goes, a symbolic link anywhere below the baseline folder) is moved, whole and unopened, a link as
a link (never followed, kept as ``<name>.link``), into the run folder's replaced-baselines/ before
the write, so nothing a user had is lost.

Writing (:meth:`BaselineStore.write`) never leaves a pair a reader would use mixed: the PNG is
renamed into place first and the sidecar, which names the PNG's digests, last; a kill between the
two leaves a PNG its sidecar does not vouch for, which reads as broken (and is repaired by the
next update), never as a baseline. The check of what is on disk and the write happen under a lock
(:func:`lock_path`, in a folder private to the user): when another run has changed the pair since this run read it,
:class:`BaselineConflict` is raised and nothing is written, so two runs never both "win".
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import shutil
import stat
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterator

from filelock import FileLock, Timeout
from PIL import Image

from pytest_diffbench.spec.sidecar import SIDECAR_FORMAT, Sidecar, SidecarError
from pytest_diffbench.store.files import (PathEscapeError, atomic_write_bytes, atomic_write_text, inside, letter_case_twin,
                                         sha256_bytes)

#: Seconds a writer waits for another run's pair write (a write takes milliseconds).
LOCK_TIMEOUT = 60.0
#: The stamp of a pair of which neither file exists.
ABSENT = "absent"
REPAIR = "rewrite the pair with pytest --diffbench --diffbench-update=missing"
#: The repair of something that is not a plain file (or folder) where one goes.
MOVE = ("pytest --diffbench --diffbench-update=missing moves it (a link as a link) into the run folder's "
        "replaced-baselines/ and writes the pair")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BaselineError(Exception):
    """A baseline exists but cannot be used or written; the message names the file, the fault and the repair."""


class BaselineConflict(BaselineError):
    """The pair changed on disk since this run read it (another run wrote it); nothing was written."""


@dataclass(frozen=True)
class Baseline:
    """A readable pair: its paths, its sidecar, its decoded image and its :attr:`stamp`."""

    image_path: Path
    sidecar_path: Path
    sidecar: Sidecar
    #: The decoded PNG, in RGB.
    image: Image.Image
    #: SHA-256 of the pair's bytes as read; :meth:`BaselineStore.write` compares it with the disk.
    stamp: str
    #: The PNG's bytes as read (a timing refresh writes them back with a new sidecar).
    png: bytes

    def load_image(self) -> Image.Image:
        """A copy of the baseline image, in RGB."""
        return self.image.copy()


@dataclass(frozen=True)
class Found:
    """What :meth:`BaselineStore.read` found for a case: nothing, a baseline, or a fault."""

    #: Identifies the bytes on disk: :data:`ABSENT`, or the SHA-256 of both files' contents.
    stamp: str
    baseline: Baseline | None = None
    #: Why the pair cannot be used (one line naming the file and the fault); "" when it can.
    fault: str = ""
    #: The fault is that the files disagree (the sidecar does not vouch for the PNG).
    mixed: bool = False


def lock_path(root: Path) -> Path:
    """The pair-write lock file of the baseline folder ``root``: ``<hash>.lock`` in
    :func:`lock_folder`, named by the SHA-256 of ``root``'s resolved path, so every run of this
    user on this machine using that folder (through any link to it) takes the same lock, and
    nothing appears among the baselines for ``git add baselines/`` to commit. Runs of other users
    or on other machines sharing the folder are not serialised by it; the stamp check of
    :meth:`BaselineStore.write` still refuses to write over a pair they changed since this run
    read it. Only names the file: :meth:`BaselineStore._lock` makes and checks its folder."""
    key = sha256_bytes(str(Path(root).resolve()).encode("utf-8", "surrogateescape"))[:32]
    return lock_folder() / f"{key}.lock"


def lock_folder() -> Path:
    """``<temporary folder>/pytest-diffbench-<uid>``: the user's own folder of baseline locks. A
    fixed name in a shared ``/tmp`` is one another user could plant (a link, a file); a folder only
    its user may write and checked by :func:`private_folder` cannot be."""
    user = os.getuid() if hasattr(os, "getuid") else "user"  # Windows' temporary folder is the user's own
    return Path(tempfile.gettempdir()) / f"pytest-diffbench-{user}"


def private_folder(folder: Path) -> Path:
    """``folder``, made (mode 0700) when missing, and checked to be a real folder (not a link) of
    this user that no one else may write (a folder of the user with wider permissions is narrowed).

    Raises :class:`BaselineError` naming the folder and the remedy otherwise.
    """
    remedy = "delete it (no diffbench run of this user needs it between runs), or set TMPDIR to another folder"
    try:
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass  # checked below, whatever it is
        found = folder.lstat()
    except OSError as exc:
        raise BaselineError(f"the baseline lock folder {folder} cannot be made ({exc.strerror or exc}); {remedy}") from None
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a folder"
        raise BaselineError(f"the baseline lock folder {folder} is {what}, so diffbench does not use it; {remedy}")
    if hasattr(os, "getuid") and found.st_uid != os.getuid():
        raise BaselineError(f"the baseline lock folder {folder} belongs to user id {found.st_uid}, not to this user "
                            f"({os.getuid()}), so diffbench does not use it; {remedy}")
    if stat.S_IMODE(found.st_mode) & 0o077:
        try:
            folder.chmod(0o700)
        except OSError as exc:
            raise BaselineError(f"the baseline lock folder {folder} cannot be made private ({exc.strerror or exc}); "
                                f"{remedy}") from None
    return folder


@contextmanager
def pair_lock(root: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the pair-write lock of the baseline folder ``root`` (:func:`lock_path`, in the user's
    private :func:`lock_folder`) for at most ``timeout`` seconds of waiting (:data:`LOCK_TIMEOUT`
    when None). Raises :class:`BaselineError` naming the file or folder and the remedy when the
    folder is not the user's private one, the lock cannot be taken (a link planted in its place),
    or another run holds it longer than ``timeout``."""
    path = lock_path(root)
    private_folder(path.parent)
    wait = LOCK_TIMEOUT if timeout is None else timeout
    try:
        lock = FileLock(path, timeout=wait, mode=0o600)
        lock.acquire()
    except Timeout:
        raise BaselineError(f"another diffbench run held the baseline lock {path} for over {wait:.0f} s; "
                            "nothing was written") from None
    except OSError as exc:
        what = "it is a symbolic link" if path.is_symlink() else exc.strerror or str(exc)
        raise BaselineError(f"the baseline lock {path} cannot be taken ({what}); delete {path} (no diffbench "
                            "run needs it between runs)") from None
    try:
        yield
    finally:
        lock.release()


def pixels_sha256(image: Image.Image) -> str:
    """SHA-256 of the image as RGB: the line ``RGB <width>x<height>`` then the pixels' bytes, row by
    row. The same pixels give the same digest whatever the PNG's encoding (compression, colour
    type, chunks)."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"RGB {rgb.width}x{rgb.height}\n".encode("ascii"))
    digest.update(rgb.tobytes())
    return digest.hexdigest()


class BaselineStore:
    """Reads and writes the baselines of one pin key."""

    def __init__(self, root: Path, pin: str) -> None:
        self.root = Path(root)
        self.pin = pin

    def paths(self, case: str) -> tuple[Path, Path]:
        """Where the (PNG, sidecar) of ``case`` (a :func:`~pytest_diffbench.store.paths.case_path`)
        lie; :meth:`read` and :meth:`write` check them with :meth:`contained_paths`."""
        base = self.root / self.pin / case
        return base.with_name(base.name + ".png"), base.with_name(base.name + ".json")

    def contained_paths(self, case: str) -> tuple[Path, Path]:
        """:meth:`paths`, checked to stay inside the baseline folder.

        Raises :class:`BaselineError` when a path would leave it (``..``, or a symbolic link on
        the way: a link committed under ``baselines/`` is never followed), or when a folder or file
        on the way is missing while one differing only in letter case exists (``CPU-FLOAT32`` next
        to ``cpu-float32``: one name on macOS and Windows, so the two would share files there).
        """
        try:
            paths = inside(self.root, f"{self.pin}/{case}.png"), inside(self.root, f"{self.pin}/{case}.json")
        except PathEscapeError as exc:
            repair = f"; {MOVE}" if "symbolic link" in str(exc) else ""
            raise BaselineError(f"baseline of {case} cannot be used: {exc}{repair}") from None
        for path in paths:
            twin = letter_case_twin(self.root, path.relative_to(self.root).as_posix())
            if twin is not None:
                raise BaselineError(f"baseline of {case} cannot be used: {twin[1]} differs from {twin[0]!r} only in "
                                    "letter case (one name on macOS and Windows); rename one of them")
        return paths

    def stored_cases(self, folder: str) -> list[str]:
        """The case names (file names without ``.png``/``.json``) of the baseline pairs directly in
        ``<pin>/<folder>`` (a test's folder, :func:`~pytest_diffbench.store.paths.case_folder`),
        sorted: a PNG and its sidecar both there. A file without the other half of its pair is no
        baseline (see :meth:`lone_files`). Plain files only (no link, no temporary file of a write
        in progress); [] when the folder is missing, is reached through a symbolic link or cannot
        be listed."""
        return sorted(name for name, suffixes in self._files(folder).items() if len(suffixes) == 2)

    def lone_files(self, folder: str) -> list[str]:
        """The file names (``extra.png``) in ``<pin>/<folder>`` whose other half (sidecar or PNG)
        is missing, sorted; read as :meth:`stored_cases` reads the folder."""
        return sorted(f"{name}{suffix}" for name, suffixes in self._files(folder).items() if len(suffixes) == 1
                      for suffix in suffixes)

    def _files(self, folder: str) -> dict[str, set[str]]:
        """Each case name in ``<pin>/<folder>`` with the suffixes (``.png``, ``.json``) of its plain files there."""
        try:
            where = inside(self.root, f"{self.pin}/{folder}")
            entries = list(os.scandir(where))
        except (PathEscapeError, OSError):
            return {}
        found: dict[str, set[str]] = {}
        for entry in entries:
            if entry.name.endswith((".png", ".json")) and entry.is_file(follow_symlinks=False):
                name, suffix = entry.name.rsplit(".", 1)
                found.setdefault(name, set()).add(f".{suffix}")
        return found

    def load(self, case: str) -> Baseline | None:
        """The case's baseline, ``None`` when neither file exists.

        Raises :class:`BaselineError` when the pair cannot be used (see :meth:`read`).
        """
        found = self.read(case)
        if found.fault:
            raise BaselineError(found.fault)
        return found.baseline

    def read(self, case: str) -> Found:
        """The case's pair, validated; never raises.

        A fault is: a path through a symbolic link, a file that is a folder or not a plain file,
        one file of the two, a PNG that is not a complete PNG or does not decode, a sidecar against
        its schema, or a sidecar that does not vouch for the PNG. A pair that disagrees is read
        once more under the write lock, so a reader never mistakes a write in progress for damage.
        """
        try:
            image_path, sidecar_path = self.contained_paths(case)
        except BaselineError as exc:
            return Found(stamp="", fault=str(exc))
        found = self._read(image_path, sidecar_path)
        if not found.mixed:
            return found
        try:
            with self._lock():
                return self._read(image_path, sidecar_path)
        except BaselineError:
            return found

    def write(self, case: str, png: bytes, sidecar: Sidecar, *, keep_replaced_in: Path,
              expected: str | None = None, pixels: Image.Image | None = None) -> Baseline:
        """Write the pair: the PNG, then the sidecar that vouches for it (each atomically).

        ``pixels``: the image ``png`` encodes, when the caller has it (the session's own
        :func:`~pytest_diffbench.store.files.encode_png` of the case's output, or the stored
        baseline it read): its pixel digest is taken from it and the PNG is not decoded again
        (its structure is still checked). Without it the PNG is decoded.

        Under the lock, what is on disk is compared with ``expected`` (the :attr:`Found.stamp` the
        caller judged against; ``None`` skips the check): when another run changed the pair
        meanwhile, :class:`BaselineConflict` is raised and nothing is written. A pair being
        replaced is first copied to ``keep_replaced_in`` (the run folder's replaced-baselines/),
        so nothing a user had is lost, also outside version control; what stands in the pair's way
        (see :meth:`obstacles`) is moved there, whole and unopened, a link as a link. Nothing
        already kept there is overwritten: a later keep takes the name with ``.1``, ``.2``, ...

        Raises :class:`BaselineError` when a path leaves the baseline folder (``..``, absolute),
        the lock is held longer than :data:`LOCK_TIMEOUT` or cannot be taken, or moving or writing
        fails (the previous pair is then left as it was, or as a PNG its sidecar does not vouch
        for, which reads as broken).
        """
        image_path, sidecar_path = self.paths(case)
        problem = _png_structure(png) if pixels is not None else ""
        if problem:
            raise BaselineError(f"the image to write to {image_path} {problem}; nothing was written")
        if pixels is None:
            image = _decode(png, image_path, writing=True)
        else:
            image = pixels if pixels.mode == "RGB" else pixels.convert("RGB")
        record = dataclasses.replace(sidecar, format=SIDECAR_FORMAT, case=case, image_sha256=sha256_bytes(png),
                                     pixels_sha256=pixels_sha256(image))
        text = record.to_json()
        with self._lock():
            obstacles = self.obstacles(case)
            if not obstacles:
                image_path, sidecar_path = self.contained_paths(case)
            old = {path: _read_file(path) for path in (image_path, sidecar_path)
                   if not any(path == thing or thing in path.parents for thing, _ in obstacles)}
            now = "" if obstacles else _stamp(old[image_path], old[sidecar_path])  # as read() stamps such a pair
            if expected is not None and now != expected:
                raise BaselineConflict(
                    f"baseline {image_path} was {'removed' if now == ABSENT else 'changed'} by another run after this "
                    "run read it, so this run did not write over it")
            try:
                for thing, name in obstacles:
                    _move(thing, _free(keep_replaced_in, name))
                image_path, sidecar_path = self.contained_paths(case)
                for path, data in old.items():
                    if data is not None:
                        atomic_write_bytes(_free(keep_replaced_in, f"{case}{path.suffix}"), data)
                atomic_write_bytes(image_path, png)
                atomic_write_text(sidecar_path, text)
            except OSError as exc:
                where = f": {exc.filename}" if exc.filename else ""
                raise BaselineError(f"baseline {image_path} could not be written ({exc.strerror or exc}{where}); "
                                    "the pair on disk is the old one, or reads as broken until an update") from None
        return Baseline(image_path, sidecar_path, record, image, _stamp(png, text.encode("utf-8")), png)

    def obstacles(self, case: str) -> list[tuple[Path, str]]:
        """What stands where the pair's folders and files go, with the name it is kept under
        (its path relative to the pin folder, the pin's own name for the pin folder; a link's with
        ``.link`` added, so the run's reports, which refuse links, never meet it): a symbolic link
        anywhere below the baseline folder, something not a folder where a folder goes, something
        not a plain file where the PNG or sidecar goes. Nothing is followed or opened; a path that
        is not inside the baseline folder (``..``, absolute) has none (:meth:`contained_paths`
        refuses it). Raises :class:`BaselineError` when a path cannot be examined."""
        relative = PurePath(self.pin, case)
        if relative.is_absolute() or ".." in relative.parts or "\x00" in str(relative):
            return []
        found: list[tuple[Path, str]] = []
        for suffix in (".png", ".json"):
            parts = relative.with_name(relative.name + suffix).parts
            here = self.root
            for depth, part in enumerate(parts, 1):
                here = here / part
                try:
                    mode = here.lstat().st_mode
                except FileNotFoundError:
                    break
                except OSError as exc:
                    raise BaselineError(f"baseline {here} cannot be examined ({exc.strerror or exc})") from None
                place = stat.S_ISREG if depth == len(parts) else stat.S_ISDIR
                if stat.S_ISLNK(mode) or not place(mode):
                    name = ("/".join(parts[1:depth]) or self.pin) + (".link" if stat.S_ISLNK(mode) else "")
                    if (here, name) not in found:
                        found.append((here, name))
                    break
        return found

    def _lock(self) -> "contextlib.AbstractContextManager[None]":
        """:func:`pair_lock` of this store's baseline folder."""
        return pair_lock(self.root)

    def _read(self, image_path: Path, sidecar_path: Path) -> Found:
        try:
            png, text = _read_file(image_path), _read_file(sidecar_path)
        except BaselineError as exc:
            return Found(stamp="", fault=str(exc))
        stamp = _stamp(png, text)
        if png is None and text is None:
            return Found(stamp=ABSENT)
        for have, lack, data in ((image_path, sidecar_path, text), (sidecar_path, image_path, png)):
            if data is None:
                return Found(stamp, fault=f"baseline {have} exists but {lack} does not; {REPAIR}")
        assert png is not None and text is not None
        try:
            sidecar = Sidecar.from_json(text.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Found(stamp, fault=f"baseline sidecar {sidecar_path} is not readable JSON ({exc}); {REPAIR}")
        except SidecarError as exc:
            return Found(stamp, fault=f"baseline sidecar {sidecar_path} {exc}; {REPAIR}")
        try:
            image = _decode(png, image_path)
        except BaselineError as exc:
            return Found(stamp, fault=str(exc))
        if sha256_bytes(png) != sidecar.image_sha256:
            pixels = pixels_sha256(image)
            if not sidecar.pixels_sha256:
                return Found(stamp, fault=(
                    f"baseline image {image_path} has SHA-256 {sha256_bytes(png)[:12]} but its sidecar {sidecar_path.name} records "
                    f"{sidecar.image_sha256[:12]}{_MIXED}"), mixed=True)
            if pixels != sidecar.pixels_sha256:
                return Found(stamp, fault=(
                    f"baseline image {image_path} has pixels of SHA-256 {pixels[:12]} but its sidecar {sidecar_path.name} records "
                    f"{sidecar.pixels_sha256[:12]}{_MIXED}"), mixed=True)
        return Found(stamp, Baseline(image_path, sidecar_path, sidecar, image, stamp, png))


_MIXED = (": the pair disagrees (a write was interrupted, or one file was edited or replaced alone); "
          f"{REPAIR}")


def _read_file(path: Path) -> bytes | None:
    """The bytes of a plain file, ``None`` when there is none. Raises :class:`BaselineError` when
    a folder or another non-file (a FIFO, a socket) is there, or it cannot be read."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        folder = next((p for p in reversed(path.parents) if os.path.lexists(p) and not p.is_dir()), path.parent)
        raise BaselineError(f"baseline folder {folder} is a file, not a folder; {MOVE}") from None
    except OSError as exc:
        raise BaselineError(f"baseline {path} cannot be read ({exc.strerror}); {REPAIR}") from None
    if stat.S_ISDIR(mode):
        raise BaselineError(f"baseline {path} is a folder, not a file; {MOVE}")
    if not stat.S_ISREG(mode):
        raise BaselineError(f"baseline {path} is not a plain file (a FIFO, socket or device); {MOVE}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BaselineError(f"baseline {path} cannot be read ({exc.strerror}); {REPAIR}") from None


def _decode(png: bytes, path: Path, *, writing: bool = False) -> Image.Image:
    """The PNG decoded to RGB. Raises :class:`BaselineError` when it is not one complete PNG
    (empty, another format, truncated, bytes after its end) or does not decode; the message names
    ``path``, the baseline read, or (``writing``) the one the image was to become."""
    problem = _png_structure(png)
    if not problem:
        try:
            with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
                image.load()
                return image.convert("RGB")
        except Exception as exc:  # PIL's decoders raise OSError, ValueError, SyntaxError, zlib.error, ...
            problem = f"does not decode ({type(exc).__name__}: {exc})"
    if writing:
        raise BaselineError(f"the image to write to {path} {problem}; nothing was written")
    raise BaselineError(f"baseline image {path} {problem}; {REPAIR}")


def _png_structure(data: bytes) -> str:
    """Why ``data`` is not one complete PNG (signature, chunks up to IEND, nothing after it); "" if it is."""
    if not data:
        return "is empty (0 bytes)"
    if not data.startswith(_PNG_SIGNATURE):
        return "is not a PNG (no PNG signature)"
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        at += 12 + length
        if at > len(data):
            break
        if kind == b"IEND":
            extra = len(data) - at
            return f"has {extra} bytes after the PNG's end (IEND)" if extra else ""
    return f"is truncated (it ends after {len(data)} bytes, before the PNG's end)"


def _stamp(png: bytes | None, sidecar: bytes | None) -> str:
    """:data:`ABSENT`, or the SHA-256 over both files' digests ("-" for a missing one)."""
    if png is None and sidecar is None:
        return ABSENT
    parts = [sha256_bytes(data) if data is not None else "-" for data in (png, sidecar)]
    return sha256_bytes(" ".join(parts).encode("ascii"))


def _free(folder: Path, name: str) -> Path:
    """``<folder>/<name>`` inside ``folder`` (see :func:`inside`), or when something is there
    already, the first of ``<name>.1``, ``<name>.2``, ... that is free: nothing kept is overwritten.
    Raises :class:`BaselineError` naming ``name`` when the path would leave ``folder``."""
    try:
        path = inside(folder, name)
        for number in range(1, 10_000):
            if not os.path.lexists(path):
                return path
            path = inside(folder, f"{name}.{number}")
    except PathEscapeError as exc:
        raise BaselineError(f"the replaced baseline {name} cannot be kept: {exc}") from None
    raise BaselineError(f"the replaced baseline {name} cannot be kept: {folder} holds 10000 copies of it")


def _move(thing: Path, to: Path) -> None:
    """Move ``thing`` to ``to`` without following or opening it: a rename (a folder whole, a link
    as the link); across file systems a link is made anew with the same target, a folder copied
    (its links as links) then removed, a FIFO made anew, another special file (which holds no
    data) removed. Raises OSError when that fails."""
    to.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(thing, to)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    mode = thing.lstat().st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(thing), to)
        thing.unlink()
    elif stat.S_ISDIR(mode):
        shutil.copytree(thing, to, symlinks=True)
        shutil.rmtree(thing)
    else:
        if stat.S_ISFIFO(mode):
            os.mkfifo(to, stat.S_IMODE(mode))
        thing.unlink()
