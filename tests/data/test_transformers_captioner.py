"""BLIP and Florence-2 through the transformers captioner: tiny random models from configs exercise the path offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from studio.data.captioners import load_captioner
from studio.models.errors import ModelLoadError


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BLIP captioning model with toy sizes, saved like a hub download."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessorPil,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "photo", "of", "red", "circle", "dog"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    text = {"vocab_size": len(words), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    text |= {"num_attention_heads": 2, "max_position_embeddings": 64, "bos_token_id": tokenizer.bos_token_id}
    text |= {"pad_token_id": tokenizer.pad_token_id, "sep_token_id": tokenizer.sep_token_id}
    text |= {"eos_token_id": tokenizer.sep_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision |= {"image_size": 32, "patch_size": 8}
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32))
    model.save_pretrained(folder / "model")
    processor = BlipProcessor(
        image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    processor.save_pretrained(folder / "model")
    return folder / "model"


def test_blip_from_a_local_folder_captions_a_batch(tiny_blip):
    captioner = load_captioner(str(tiny_blip), max_new_tokens=5)
    assert captioner.name.startswith("blip:")
    images = [Image.new("RGB", (50, 40), (200, 0, 0)), Image.new("L", (64, 64), 90)]
    progress = []
    captions = captioner.caption_batch(images, on_progress=lambda *p: progress.append(p))
    # random weights: the words are nonsense, but every image gets a string from the model's vocabulary
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    assert set(" ".join(captions).split()) <= {"a", "photo", "of", "red", "circle", "dog"}
    assert progress[-1] == (2, 2)


@pytest.fixture(scope="module")
def tiny_florence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Florence-2 (native transformers classes) with toy sizes."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import (
        BartTokenizer,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab |= {symbol: 4 + index for index, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    tokenizer = BartTokenizer(vocab=vocab, merges=[], extra_special_tokens={"image_token": "<image>"})
    side = 64  # the vision tower downsamples 32x: 2 x 2 spatial tokens + 1 temporal token
    image_processor = CLIPImageProcessorPil(
        size={"height": side, "width": side}, do_center_crop=False, image_seq_length=5
    )
    text = {"vocab_size": len(tokenizer), "d_model": 16, "encoder_layers": 1, "decoder_layers": 1}
    text |= {"encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32}
    text |= {"max_position_embeddings": 64, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}
    text |= {"decoder_start_token_id": 2, "forced_eos_token_id": 2}
    vision = {"depths": [1, 1, 1, 1], "embed_dim": [8, 16, 16, 16], "num_heads": [1, 2, 2, 2]}
    vision |= {"num_groups": [1, 2, 2, 2], "window_size": 2, "projection_dim": 16, "drop_path_rate": 0.0}
    config = Florence2Config(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id)
    folder = tmp_path_factory.mktemp("tiny-florence")
    Florence2ForConditionalGeneration(config).save_pretrained(folder)
    Florence2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_florence2_from_a_local_folder_without_remote_code(tiny_florence):
    captioner = load_captioner(str(tiny_florence), max_new_tokens=4)
    assert captioner.name.startswith("florence2:") and captioner.prompt == "<CAPTION>"
    captions = captioner.caption([Image.new("RGB", (50, 40), (200, 0, 0)), Image.new("RGB", (64, 64), (0, 0, 200))])
    assert len(captions) == 2 and all(isinstance(c, str) and "<" not in c for c in captions)


def test_missing_weights_offline_is_one_clear_sentence():
    with pytest.raises(ModelLoadError) as caught:
        load_captioner("blip")  # Salesforce/blip-image-captioning-base: not cached here, and the hub is off
    message = str(caught.value)
    assert "not available offline" in message and "hf download Salesforce/blip-image-captioning-base" in message
    assert "\n" not in message


def test_unsupported_model_types_are_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(ModelLoadError, match="'clip' model; captioners supported here: blip, florence2"):
        load_captioner(str(tmp_path))
