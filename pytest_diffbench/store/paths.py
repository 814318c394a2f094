"""Case paths: where a test case's files go, from its pytest node id.

A node id becomes one folder per part (test file, class, test function) and a file name from
its parameter id. Each part goes through :func:`path_segment`, which is one-to-one and bounded:

* a part that is already a clean, short file name (letters, digits, ``.``, ``_``, ``-``; no
  leading or trailing ``.``/``_``, no leading ``-``; at most :data:`MAX_SEGMENT` characters) and
  that every file system takes as it is is kept exactly, so ``seed0-euler_a-20steps-cfg5.5``
  stays ``seed0-euler_a-20steps-cfg5.5``;
* any other part becomes its cleaned, shortened text plus ``-`` and the first
  :data:`HASH_CHARS` hex digits of the SHA-256 of the *original* text:
  ``a red circle, on a blue background`` -> ``a_red_circle_on_a_blue_background-<hash>``, and
  ``a red circle on a blue background`` gets another hash. Two parts that clean to the same
  text therefore keep two files. The hashed form never starts with ``-`` either.

Names a file system or a shell would take for something else are never kept: one starting with
``-`` (read as an option by ``rm``, ``git add`` and most commands: ``-rf`` becomes
``rf-<hash>``), and Windows' device names (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``-``COM9``,
``LPT0``-``LPT9`` in any letter case, alone or before an extension: ``nul``, ``aux.txt``), which
Windows opens as the device, not as a file (``aux.txt`` becomes ``aux_txt-<hash>``). A name
ending in a space or a dot, which Windows drops, is never clean.

Every segment is at most :data:`MAX_SEGMENT` characters, so a file name made from one (plus
``.png``/``.json`` and the temporary name :func:`~pytest_diffbench.store.files.atomic_write_bytes`
writes next to it) stays far below the 255 bytes file systems allow.

Letter case is kept: ``A`` and ``a`` are two segments. On case-insensitive file systems (macOS,
Windows) they would share a file, so the plugin refuses such a pair at collection
(:func:`case_path_clashes`), on every platform, so that baselines committed on Linux check out
elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable, Mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: The longest segment :func:`path_segment` returns (the hash included).
MAX_SEGMENT = 120
#: Hex digits of the SHA-256 of the original text a cleaned or shortened segment ends with.
HASH_CHARS = 8


def safe_segment(text: str) -> str:
    """``text`` cleaned: only letters, digits, ``.``, ``_`` and ``-``, no leading/trailing ``.``/``_``.

    Not one-to-one (``a/b`` and ``a b`` both give ``a_b``) and not bounded; paths use
    :func:`path_segment`, which is both.
    """
    return _UNSAFE.sub("_", text).strip("_.") or "_"


def path_segment(text: str) -> str:
    """One file-name segment for ``text``: ``text`` itself when cleaning leaves it unchanged, it has
    at most :data:`MAX_SEGMENT` characters, does not start with ``-`` and is no Windows device name
    (see the module docstring), else a readable prefix (the cleaned text, shortened, never starting
    with ``-`` or a device name) plus ``-`` and the first :data:`HASH_CHARS` hex digits of the
    SHA-256 of ``text``."""
    cleaned = safe_segment(text)
    if cleaned == text and len(text) <= MAX_SEGMENT and not text.startswith("-") and not _device_name(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    prefix = cleaned[: MAX_SEGMENT - HASH_CHARS - 1].strip("._-")
    if _device_name(prefix):
        prefix = prefix.replace(".", "_", 1)
    return f"{prefix}-{digest}" if prefix else digest


#: Windows' reserved device names, which it opens as the device whatever the extension.
_DEVICE = re.compile(r"(?:CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])", re.IGNORECASE)


def _device_name(name: str) -> bool:
    """Whether Windows takes the file name ``name`` for a device (``nul``, ``Aux.txt``, ``com1.tar.gz``)."""
    return _DEVICE.fullmatch(name.split(".", 1)[0]) is not None


def case_path(nodeid: str) -> str:
    """Relative path of a test case's files, from its pytest node id.

    ``examples/test_a.py::TestX::test_b[seed0-euler-20steps-cfg7.5]`` becomes
    ``examples/test_a/TestX/test_b/seed0-euler-20steps-cfg7.5``; a test without parameters gets
    the case name ``default``. Each part is a :func:`path_segment`.
    """
    file_part, *names = nodeid.split("::")
    if file_part.endswith(".py"):
        file_part = file_part[: -len(".py")]
    last = names[-1] if names else "test"
    match = re.fullmatch(r"(.*?)\[(.*)\]", last, flags=re.DOTALL)
    function, param = (match.group(1), match.group(2)) if match else (last, "default")
    segments = [*file_part.split("/"), *names[:-1], function, param]
    return "/".join(path_segment(s) for s in segments)


def case_folder(nodeid: str) -> str:
    """The folder of a test's cases: :func:`case_path` without the case segment."""
    return case_path(nodeid).rsplit("/", 1)[0]


def pin_key(template: str, fields: Mapping[str, Any]) -> str:
    """Fill the pin template (e.g. ``{device}-{dtype}``) and make it one :func:`path_segment`.

    Only whole ``{name}`` parts are replaced, by ``str(fields[name])``: no attribute access, format
    spec or conversion is ever evaluated, whatever the template (plugin.options checks its grammar).
    Raises KeyError for a field ``fields`` lacks.
    """
    return path_segment(_PIN_FIELD.sub(lambda match: str(fields[match.group(1)]), template))


_PIN_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def case_path_clashes(nodeids: Iterable[str]) -> list[tuple[str, str]]:
    """(earlier node id, later node id) for each node id whose case path an earlier one already
    has, letter case ignored (see the module docstring)."""
    seen: dict[str, str] = {}
    clashes = []
    for nodeid in nodeids:
        key = case_path(nodeid).casefold()
        if key in seen:
            clashes.append((seen[key], nodeid))
        else:
            seen[key] = nodeid
    return clashes
