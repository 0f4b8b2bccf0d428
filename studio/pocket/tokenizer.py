"""The pocket model's tokenizer: a small CLIP-compatible byte-level BPE.

It is trained with the `tokenizers` library on a frequency list of common
English words (shipped beside this file) plus the shapes world's vocabulary,
then written as the `vocab.json` + `merges.txt` pair that
`CLIPTokenizer.from_pretrained` reads, laid out the way OpenAI's CLIP vocab is
(256 byte symbols, the same with the end-of-word mark, then one entry per
merge, then the two special tokens). Common words are single tokens; anything
else, such as a made-up trigger word, splits into sub-tokens.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel

from studio.pocket.world import ALL_SHAPES, PALETTE

WORD_LIST = Path(__file__).with_name("vocab") / "english_words.tsv"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
MAX_LENGTH = 77  # as in Stable Diffusion, so prompts behave the same

# Words a user of the studio is likely to type; guaranteed whole tokens.
DOMAIN_WORDS = (
    list(ALL_SHAPES)
    + list(PALETTE)
    + "a an the on in of with and background photo picture painting drawing style shape object "
    "art image small large big tiny bright dark".split()
)


def _corpus(word_list: Path) -> list[str]:
    """Words repeated by a damped frequency, so frequent words merge first."""
    lines = []
    for row in word_list.read_text(encoding="utf-8").splitlines():
        word, count = row.split("\t")
        lines.append(" ".join([word] * max(1, int(math.sqrt(int(count)) / 4))))
    lines += [" ".join([word] * 2000) for word in DOMAIN_WORDS]
    return lines


def train_merges(vocab_size: int, word_list: Path = WORD_LIST) -> list[tuple[str, str]]:
    """Learn BPE merges with CLIP's normalisation and pre-tokenisation."""
    bpe = Tokenizer(models.BPE(end_of_word_suffix=END_OF_WORD, unk_token=EOS))
    bpe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            ByteLevel(add_prefix_space=False),
        ]
    )
    # room for the 512 byte symbols and the 2 special tokens we add ourselves
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=ByteLevel.alphabet(),
        end_of_word_suffix=END_OF_WORD,
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(word_list), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return merges


def clip_vocab(merges: list[tuple[str, str]], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Lay out a vocab the way CLIP does, keeping as many merges as fit."""
    symbols = ByteLevel.alphabet()
    symbols = sorted(symbols)
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + END_OF_WORD] = len(vocab)
    kept = []
    for left, right in merges:
        if len(vocab) >= vocab_size - 2:
            break
        if left not in vocab or right not in vocab:
            continue  # a merge of symbols we dropped
        merged = left + right
        if merged in vocab:
            continue
        vocab[merged] = len(vocab)
        kept.append((left, right))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return vocab, kept


def build_tokenizer(out_dir: Path, vocab_size: int = 4096):
    """Train, write and reload the tokenizer; returns the `CLIPTokenizer`."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab(train_merges(vocab_size), vocab_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with open(out_dir / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    tokenizer = CLIPTokenizer(
        vocab=str(out_dir / "vocab.json"), merges=str(out_dir / "merges.txt"), model_max_length=MAX_LENGTH
    )
    tokenizer.save_pretrained(out_dir)
    return CLIPTokenizer.from_pretrained(out_dir)
