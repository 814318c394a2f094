"""The tokenizer of ``diffbench-tiny``: CLIP's BPE format, with one token per caption word.

A byte-level vocabulary (every byte, alone and word-final, as in the random-weight
pipeline's tokenizer) makes a two-layer text encoder assemble "circle" from six byte
embeddings before the UNet can use it; the trial run with it learned colours but not
shapes. Here the byte vocabulary is kept (so any prompt still tokenizes) and BPE merges
are learned on the words of the training captions until each of them is one token.

:func:`learn_merges` is plain BPE (Sennrich et al.): count adjacent symbol pairs over the
distinct words, merge the most frequent pair (ties broken by the pair's text, so the result
is deterministic), repeat until every word is a single symbol. Applying merges in rank
order, as ``CLIPTokenizer`` does, reproduces the learned segmentation for these words;
:func:`write_tokenizer` checks that it does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from training.shapes import COLOUR_NAMES, SHAPES, caption_for

__all__ = ["WORDS", "learn_merges", "write_tokenizer"]

END = "</w>"
#: Every word of every training caption, sorted.
WORDS: tuple[str, ...] = tuple(sorted(
    {*COLOUR_NAMES, *SHAPES, *caption_for(SHAPES[0], COLOUR_NAMES[0], COLOUR_NAMES[1:3]).split()}
))


def _symbols(word: str) -> tuple[str, ...]:
    return (*word[:-1], word[-1] + END)


def learn_merges(words: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """BPE merges that turn each of ``words`` into one symbol, most frequent pair first."""
    segmented = {word: _symbols(word) for word in words}
    merges: list[tuple[str, str]] = []
    while any(len(symbols) > 1 for symbols in segmented.values()):
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols in segmented.values():
            pairs.update(zip(symbols, symbols[1:]))
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for word, symbols in segmented.items():
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            segmented[word] = tuple(merged)
    return merges


def write_tokenizer(folder: Path, max_length: int):
    """Write ``vocab.json`` and ``merges.txt`` (plus the tokenizer config) to ``folder``.

    Returns the ``CLIPTokenizer`` read back from ``folder``. Raises ``RuntimeError`` if ``CLIPTokenizer`` does not
    read a caption word back as a single token.
    """
    from transformers import CLIPTokenizer

    from pytest_diffbench.run.pipelines import RANDOM_SD_DIR

    # The random-weight pipeline's vocabulary: every byte, alone and word-final.
    base = json.loads((RANDOM_SD_DIR / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    specials = {token: base.pop(token) for token in ("<|startoftext|>", "<|endoftext|>")}
    vocab = dict(base)
    merges = learn_merges(WORDS)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    for token in specials:
        vocab[token] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges), encoding="utf-8"
    )
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)
    for word in WORDS:
        pieces = tokenizer.tokenize(word)
        if pieces != [word + END]:
            raise RuntimeError(f"caption word {word!r} tokenizes to {pieces}, expected one token")
    tokenizer.save_pretrained(folder)
    return tokenizer
