"""The background writer (store/writer.py) and the PNG encoding it runs (store/files.py)."""

from __future__ import annotations

import io
import threading

from PIL import Image

from pytest_diffbench.store import files
from pytest_diffbench.store.writer import BackgroundWriter, WriteFailure


def test_jobs_run_in_order_and_a_failing_one_is_kept_for_its_case_while_the_others_still_run():
    writer = BackgroundWriter(depth=2)
    done: list[str] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    for name, work in (("a", lambda: done.append("a")), ("b", fail), ("b", lambda: done.append("b journal")),
                       ("c", lambda: done.append("c")), ("c", lambda: done.append("c journal"))):
        writer.submit(f"test.py::{name}", f"images/{name}.png", work)
    failures = writer.drain()
    assert done == ["a", "b journal", "c", "c journal"]
    assert failures == [WriteFailure("test.py::b", "images/b.png", "OSError: No space left on device")]
    assert failures[0].message() == "diffbench could not write images/b.png for test.py::b: OSError: No space left on device"
    assert writer.drain() == []  # each failure is handed over once
    assert writer.close() == []


def test_a_later_job_of_the_case_sees_its_failed_write():
    writer = BackgroundWriter()
    seen: list[WriteFailure | None] = []

    def fail() -> None:
        raise ValueError("bad")

    writer.submit("x", "images/x.png", fail)
    writer.submit("x", "journal.jsonl", lambda: seen.append(writer.failure("x")))
    writer.submit("y", "journal.jsonl", lambda: seen.append(writer.failure("y")))
    writer.close()
    assert seen == [WriteFailure("x", "images/x.png", "ValueError: bad"), None]


def test_the_queue_is_bounded_and_drain_waits_for_every_job():
    writer = BackgroundWriter(depth=1)
    release = threading.Event()
    done: list[int] = []
    writer.submit("a", "a", release.wait)  # the thread holds this one; one more may wait in the queue
    writer.submit("b", "b", lambda: done.append(1))
    assert writer._queue.full()
    release.set()
    writer.submit("c", "c", lambda: done.append(2))
    writer.drain()
    assert done == [1, 2] and writer._queue.empty()
    writer.close()
    writer.submit("d", "d", lambda: done.append(3))  # a closed writer starts a new thread
    writer.close()
    assert done == [1, 2, 3]


def test_png_bytes_depend_only_on_the_pixels_at_the_chosen_level(astronaut_photo):
    image = astronaut_photo(64)
    tagged = image.copy()
    tagged.info["icc_profile"] = b"not written"
    first = files.encode_png(image)
    assert first == files.encode_png(image.copy()) == files.encode_png(tagged)
    with Image.open(io.BytesIO(first)) as decoded:
        assert decoded.convert("RGB").tobytes() == image.convert("RGB").tobytes()
        assert "icc_profile" not in decoded.info
    assert tagged.info["icc_profile"] == b"not written"  # the caller's image is left as it was
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=files.PNG_COMPRESS_LEVEL)
    assert first == buffer.getvalue()


def test_atomic_writer_replaces_the_file_when_its_block_ends_and_leaves_it_when_the_block_raises(tmp_path):
    target = tmp_path / "out" / "bundle.zip"
    with files.atomic_writer(target) as handle:
        handle.write(b"first")
        handle.seek(0)
        assert handle.read() == b"first"  # seekable, as a zip being built needs
        assert not target.exists()
    assert target.read_bytes() == b"first"
    try:
        with files.atomic_writer(target) as handle:
            handle.write(b"half")
            raise RuntimeError("stopped")
    except RuntimeError:
        pass
    assert target.read_bytes() == b"first" and sorted(p.name for p in target.parent.iterdir()) == ["bundle.zip"]
