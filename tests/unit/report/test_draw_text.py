"""Text the grid font lacks (accents, symbols, emoji in preset names, seed plans, prompts, ids) is
drawn as its escape, never as a box: the figure equals one drawn from the escaped text."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.report.draw import comparison_grid, drawable_text, sweep_sheet

NAME = "très-long ✓ 😀"
ESCAPED = "tr\\u00e8s-long \\u2713 \\U0001f600"


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3) % 251)


def sheet(image: Image.Image, title: str = "test_x", row: str = "euler", column: str = "20") -> np.ndarray:
    return np.asarray(sweep_sheet({(row, column): image}, [row], [column], title, "sampler", "steps"))


def test_drawable_text_escapes_only_what_the_font_lacks() -> None:
    assert drawable_text("seed0 · cfg7.5 ±2°") == "seed0 · cfg7.5 ±2°"
    assert drawable_text(NAME) == ESCAPED
    assert drawable_text("e\u0301") == drawable_text("\u00e9") == "\\u00e9"  # NFD and NFC spellings draw alike


@pytest.mark.parametrize("where", ["title", "row", "column"])
def test_sweep_sheet_draws_escapes_not_boxes(image: Image.Image, where: str) -> None:
    def drawn(text: str) -> np.ndarray:
        return sheet(image, **{where: f"preset {text}@3"})

    assert np.array_equal(drawn(NAME), drawn(ESCAPED))
    assert not np.array_equal(drawn(NAME), drawn("tr\ue000s-long \ue000 \ue000"))  # the font's missing box


def test_comparison_grid_labels_draw_escapes(image: Image.Image) -> None:
    prompt = "a café at night"
    grid = comparison_grid(image, None, [f"prompt {prompt} · plan {NAME} #0"])
    same = comparison_grid(image, None, [f"prompt a caf\\u00e9 at night · plan {ESCAPED} #0"])
    assert np.array_equal(np.asarray(grid), np.asarray(same))
