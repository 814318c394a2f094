"""The procedural shapes dataset (training/shapes.py) and its classifier (training/classify.py)."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from training.classify import classify, foreground_mask, nearest_colour  # the checkout is on sys.path (conftest.py)
from training.shapes import (
    COLOURS,
    COLOUR_NAMES,
    IMAGE_SIZE,
    SHAPES,
    batch,
    caption_for,
    dataset,
    make_example,
)

SAMPLES = 300


@pytest.fixture(scope="module")
def synthetic():
    return dataset(SAMPLES, seed=1234)


def test_same_seed_gives_identical_bytes():
    first = dataset(40, seed=5)
    second = dataset(40, seed=5)
    assert [image.tobytes() for image, _, _ in first] == [image.tobytes() for image, _, _ in second]
    assert [(caption, labels) for _, caption, labels in first] == [(c, l) for _, c, l in second]


def test_different_seeds_differ():
    assert [im.tobytes() for im, _, _ in dataset(10, seed=1)] != [im.tobytes() for im, _, _ in dataset(10, seed=2)]


def test_batches_are_seeded_by_index():
    images, captions, labels = batch(6, seed=3, index=17)
    again, captions_again, _ = batch(6, seed=3, index=17)
    other, _, _ = batch(6, seed=3, index=18)
    assert images.shape == (6, 3, IMAGE_SIZE, IMAGE_SIZE) and images.dtype == np.float32
    assert -1.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(images, again)
    assert captions == captions_again
    assert not np.array_equal(images, other)
    assert len(labels) == 6


def test_examples_are_consistent_with_their_labels(synthetic):
    seen_shapes, seen_colours, two_tone = set(), set(), 0
    for image, caption, labels in synthetic:
        assert image.mode == "RGB" and image.size == (IMAGE_SIZE, IMAGE_SIZE)
        assert caption == caption_for(labels.shape, labels.colour, labels.background)
        assert labels.colour not in labels.background
        assert len(set(labels.background)) == len(labels.background) in (1, 2)
        assert (labels.split is None) == (len(labels.background) == 1)
        left, top, right, bottom = labels.box
        assert 0 < left < right < IMAGE_SIZE and 0 < top < bottom < IMAGE_SIZE
        seen_shapes.add(labels.shape)
        seen_colours.add(labels.colour)
        two_tone += len(labels.background) == 2
    assert seen_shapes == set(SHAPES) and seen_colours == set(COLOUR_NAMES)
    assert 0.15 < two_tone / len(synthetic) < 0.45


def test_captions_read_naturally():
    assert caption_for("circle", "red", ("blue",)) == "a red circle on a blue background"
    assert caption_for("square", "red", ("blue", "white")) == "a red square on a blue and white background"


def test_make_example_draws_from_the_given_generator():
    a = make_example(np.random.default_rng(9))
    b = make_example(np.random.default_rng(9))
    assert a[0].tobytes() == b[0].tobytes() and a[1] == b[1]


def test_palette_snaps_nominal_colours():
    for name, rgb in COLOURS.items():
        assert nearest_colour(np.array(rgb)) == name


def _accuracy(examples, transform=lambda image: image):
    colour = shape = 0
    for image, _, labels in examples:
        result = classify(transform(image))
        colour += result.colour == labels.colour
        shape += result.shape == labels.shape
    return colour / len(examples), shape / len(examples)


def test_classifier_is_right_on_the_training_images(synthetic):
    colour, shape = _accuracy(synthetic)
    assert colour >= 0.98 and shape >= 0.95, (colour, shape)


def test_classifier_tolerates_blur_and_noise(synthetic):
    """Generated images are softer and noisier than the training images."""
    rng = np.random.default_rng(0)

    def degrade(image):
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)
        noisy = blurred + rng.normal(0.0, 8.0, blurred.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    colour, shape = _accuracy(synthetic[:150], degrade)
    assert colour >= 0.95 and shape >= 0.9, (colour, shape)


def test_classifier_accepts_float_arrays(synthetic):
    image, _, labels = synthetic[0]
    result = classify(np.asarray(image, dtype=np.float32) / 255.0)
    assert (result.colour, result.shape) == (labels.colour, labels.shape)


def test_plain_image_has_no_foreground():
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS["blue"])
    result = classify(image)
    assert result.colour is None and result.shape is None
    assert not foreground_mask(image).any()
