"""Case paths: where a test case's files go, from its pytest node id."""

from __future__ import annotations

import re
from typing import Any, Mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_segment(text: str) -> str:
    """One file-name segment made only of letters, digits, ``.``, ``_`` and ``-``."""
    return _UNSAFE.sub("_", text).strip("_.") or "_"


def case_path(nodeid: str) -> str:
    """Relative path of a test case's files, from its pytest node id.

    ``examples/test_a.py::TestX::test_b[seed0-euler-20steps-cfg7.5]`` becomes
    ``examples/test_a/TestX/test_b/seed0-euler-20steps-cfg7.5``; a test without parameters gets
    the case name ``default``.
    """
    file_part, *names = nodeid.split("::")
    if file_part.endswith(".py"):
        file_part = file_part[: -len(".py")]
    last = names[-1] if names else "test"
    match = re.fullmatch(r"(.*?)\[(.*)\]", last, flags=re.DOTALL)
    function, param = (match.group(1), match.group(2)) if match else (last, "default")
    segments = [*file_part.split("/"), *names[:-1], function, param]
    return "/".join(safe_segment(s) for s in segments)


def test_path(nodeid: str) -> str:
    """The folder of a test's cases: :func:`case_path` without the case segment."""
    return case_path(nodeid).rsplit("/", 1)[0]


def pin_key(template: str, fields: Mapping[str, Any]) -> str:
    """Fill the pin template (e.g. ``{device}-{dtype}``) and make it one safe path segment."""
    return safe_segment(template.format(**{key: safe_segment(str(value)) for key, value in fields.items()}))
