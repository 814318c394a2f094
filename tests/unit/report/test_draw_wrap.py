"""The figures' word wrap finds its lines by bisection over cached widths: the lines are those of
the plain algorithm it replaced (measure every candidate line, cut a long word one character at a
time), which this module keeps as the reference."""

from __future__ import annotations

import math
import random

import pytest

from pytest_diffbench.report.draw import _Style, drawable_text


def reference_wrap(style: _Style, text: str, width: int, widths: dict[str, int]) -> list[str]:
    """The wrap as it was: every candidate measured with FreeType (each text once, in ``widths``,
    to keep the test cheap), a long word cut by a linear scan."""
    def text_width(line: str) -> int:
        drawn = drawable_text(line)
        if drawn not in widths:
            widths[drawn] = math.ceil(style.font.getlength(drawn))
        return widths[drawn]

    lines: list[str] = []
    for paragraph in [drawable_text(line) for line in text.splitlines()] or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_width(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while len(line) > 1 and text_width(line) > width:
                cut = 1
                while cut < len(line) - 1 and text_width(line[:cut + 1]) <= width:
                    cut += 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


TEXTS = [
    "",
    "difference",
    "failed_quality · tests/test_sweep.py::test_sweep[seed0-Euler-10steps-cfg7.5]",
    "sampler DPM++ 2M Karras · steps 20 · cfg 7.5 · seed 560774914 (plan portraits #0) · config 0123456789ab",
    "ssim 0.612 >= 0.95 FAIL · psnr 21.3 >= 25 FAIL · lpips - off · seconds/image 0.4 s <= 0.3 s FAIL",
    "why: " + "x" * 300,
    "a_word_far_longer_than_any_line_of_the_figure_" * 4 + " then short words after it",
    "très-long ✓ 😀 préset naïve façade " * 5,
    "  leading spaces,  double  spaces and a trailing one ",
    "first paragraph\nsecond paragraph, a little longer than the first\n\nafter an empty line",
    "W" * 40 + " i" * 40,
]


@pytest.mark.parametrize("font_size", [12, 57])
@pytest.mark.parametrize("text", TEXTS)
def test_wrap_gives_the_lines_of_the_plain_algorithm(font_size: int, text: str) -> None:
    style, widths = _Style(font_size), {}
    for width in (-5, 0, 1, font_size, 5 * font_size, 20 * font_size, 60 * font_size):
        assert style.wrap(text, width) == reference_wrap(style, text, width, widths), (width, text)


def test_wrap_gives_the_lines_of_the_plain_algorithm_on_random_texts() -> None:
    """Random words and widths, a seeded generator: the same lines every time."""
    rng = random.Random(8)
    alphabet = "abcdefghijklmnopqrstuvwxyzWMil1.:-_[]/ ·°±éü✓"
    style, widths = _Style(14), {}
    for _ in range(60):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 8, 20, 40]))) for _ in range(rng.randint(1, 12))]
        text = " ".join(words)
        width = rng.choice([3, 20, 60, 150, 400, 900])
        assert style.wrap(text, width) == reference_wrap(style, text, width, widths), (width, text)
