"""PNG compression level: encode time and size for each zlib level on real photos.

Runs :func:`pytest_diffbench.store.files.encode_png`'s encoding (Pillow, no text chunks) at
every ``compress_level`` 0..9 on scikit-image's RGB photos (astronaut, coffee, chelsea, rocket),
resized to each side (256 and 1024 px by default), and prints per level: the median encode time
(ms, over ``--repeats`` runs, levels interleaved so machine noise spreads evenly), the size (KiB,
summed over the photos), both as a ratio of level 6 (Pillow's default), and whether two encodes
of the same pixels gave identical bytes. The level diffbench uses is
:data:`pytest_diffbench.store.files.PNG_COMPRESS_LEVEL`.

Usage: python benchmarks/png_levels.py [--sides 256 1024] [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import skimage.data
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def encode(image: Image.Image, level: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for side in args.sides:
        photos = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((side, side), Image.BICUBIC)
                  for name in PHOTOS]
        times: dict[int, list[float]] = {level: [] for level in range(10)}
        sizes: dict[int, int] = {}
        same: dict[int, bool] = {}
        for _ in range(args.repeats):
            for level in range(10):  # interleaved
                start = time.perf_counter()
                data = [encode(photo, level) for photo in photos]
                times[level].append((time.perf_counter() - start) / len(photos))
                sizes[level] = sum(map(len, data))
                same[level] = same.get(level, True) and data == [encode(photo, level) for photo in photos]
        base_t, base_s = statistics.median(times[6]), sizes[6]
        print(f"{side}x{side} px, {len(photos)} photos, median of {args.repeats}:")
        print("level  ms/image  time/L6  KiB(all)  size/L6  identical bytes")
        for level in range(10):
            t = statistics.median(times[level])
            print(f"{level:5d}  {t * 1000:8.2f}  {t / base_t:7.2f}  {sizes[level] / 1024:8.0f}  {sizes[level] / base_s:7.2f}  "
                  f"{same[level]}")


if __name__ == "__main__":
    main()
