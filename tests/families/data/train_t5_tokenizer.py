"""Make the tiny T5 tokenizer of the Flux builder (``t5-tokenizer/``) with the ``tokenizers`` library.

Run once (``python tests/families/data/train_t5_tokenizer.py``); its output is committed, so the
tests need neither the hub nor this script. The Unigram model is fitted by counting: each word of
:data:`CORPUS` is a piece scored by its log frequency, and single characters (scored below every
word) spell anything else. (``UnigramTrainer`` on a corpus this small keeps only fragments, and its
scores differ in the last bits from run to run; counting gives whole words and the same files on
every run.) T5's special tokens come first (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2), an end-of-sequence
token is appended to every text as T5 does, and no ``<extra_id_N>`` sentinel tokens are added.
"""

from __future__ import annotations

import json
import math
import string
from collections import Counter
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

FOLDER = Path(__file__).resolve().parent / "t5-tokenizer"
SPECIAL = ["<pad>", "</s>", "<unk>"]
SPACE = "\u2581"
COLOURS = "red green blue yellow white black orange purple pink grey brown"
SHAPES = "circle square triangle cube sphere star cat dog tree house car flower mountain river"
WORDS = "a an the on of in with and photo painting drawing small large bright dark background sky night day"
CORPUS = [f"a {colour} {shape} on a {other} background" for colour in COLOURS.split() for shape in SHAPES.split()
          for other in COLOURS.split()[:3]] + [WORDS]


def fit() -> Tokenizer:
    """The Unigram tokenizer of :data:`CORPUS` (words by log frequency, then characters), with T5's template."""
    counts = Counter(SPACE + word for line in CORPUS for word in line.split())
    total = sum(counts.values())
    words = [(piece, math.log(count / total)) for piece, count in sorted(counts.items())]
    floor = min(score for _, score in words) - 1.0
    characters = [(char, floor - 1.0) for char in string.ascii_lowercase + string.digits + string.punctuation + SPACE]
    vocab = [(token, 0.0) for token in SPECIAL] + words + characters
    tokenizer = Tokenizer(Unigram(vocab, unk_id=SPECIAL.index("<unk>"), byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", SPECIAL.index("</s>"))])
    return tokenizer


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    fit().save(str(FOLDER / "tokenizer.json"))
    config = {"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
              "extra_ids": 0, "additional_special_tokens": [], "model_max_length": 32}
    (FOLDER / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
