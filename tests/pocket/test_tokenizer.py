import shutil

import pytest
from transformers import CLIPTokenizer

from studio.pocket import world
from studio.pocket.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(out, vocab_size=8192)
    return out


@pytest.fixture()
def tokenizer(tokenizer_dir):
    return CLIPTokenizer.from_pretrained(tokenizer_dir)


def test_world_words_are_single_tokens(tokenizer):
    for word in world.ALL_SHAPES + tuple(world.PALETTE) + ("background", "photo", "style"):
        pieces = tokenizer.tokenize(word)
        assert pieces == [word + "</w>"], (word, pieces)


def test_plain_english_is_covered_and_unknown_words_split(tokenizer):
    ids = tokenizer("a photo of a dog in the style of a painting").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]
    pieces = tokenizer.tokenize("zxqvk")
    assert len(pieces) > 1 and "".join(pieces).replace("</w>", "") == "zxqvk"
    assert tokenizer.decode(tokenizer("a sks dog").input_ids, skip_special_tokens=True) == "a sks dog"


def test_clip_conventions(tokenizer):
    assert tokenizer.model_max_length == 77
    ids = tokenizer("a red circle", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id and tokenizer.pad_token_id == tokenizer.eos_token_id


def test_added_tokens_for_textual_inversion(tokenizer, tmp_path):
    before = len(tokenizer)
    assert tokenizer.add_tokens(["<shape-1>", "<shape-1>_1"]) == 2
    assert len(tokenizer) == before + 2
    ids = tokenizer("a <shape-1> <shape-1>_1 on a black background").input_ids
    assert tokenizer.convert_tokens_to_ids("<shape-1>") in ids
    assert tokenizer.convert_tokens_to_ids("<shape-1>_1") in ids
    tokenizer.save_pretrained(tmp_path)
    assert CLIPTokenizer.from_pretrained(tmp_path).convert_tokens_to_ids("<shape-1>") == before


def test_vocab_and_merges_alone_are_enough(tokenizer_dir, tokenizer, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(tokenizer_dir / name, tmp_path / name)
    plain = CLIPTokenizer.from_pretrained(tmp_path)
    text = "a yellow triangle on a black background"
    assert plain(text).input_ids == tokenizer(text).input_ids
