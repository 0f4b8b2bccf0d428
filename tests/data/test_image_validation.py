"""One image at a time: the decisions and conversions of `check_image`."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import bomb_png, jpeg_bytes, png_bytes
from PIL import Image, ImageCms

from studio.data.fingerprints import NEAR_DUPLICATE_DISTANCE, hamming, nearest, perceptual_hash, pixel_sha256
from studio.data.names import slugify, unique_name
from studio.data.validate import ImageRules, check_image, to_rgb
from studio.pocket import world


def test_own_pixel_limit_refuses_before_decoding():
    # 9000 x 9000 is under Pillow's own limit: the studio's 64 MP rule is what refuses it
    result = check_image(bomb_png(9000, 9000), "big.png")
    assert result.rejection.code == "decompression-bomb" and "81 MP" in result.rejection.message
    assert (
        check_image(bomb_png(300, 300), "x.png", ImageRules(max_pixels=50_000)).rejection.code == "decompression-bomb"
    )


def test_too_small_and_smaller_than_resolution_are_told_apart():
    rules = ImageRules(resolution=512)
    image = Image.new("RGB", (200, 300), (10, 20, 30))
    small = check_image(png_bytes(image), "s.png", rules)
    assert small.accepted and [w.code for w in small.warnings] == ["smaller-than-resolution"]
    tiny = check_image(png_bytes(image.resize((100, 120))), "t.png", rules)
    assert tiny.rejection.code == "too-small" and "under 128 px (25% of the 512 px" in tiny.rejection.message


def test_alpha_is_composited_on_the_chosen_background():
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 32, 64))
    result = check_image(png_bytes(rgba), "a.png", ImageRules(resolution=64, background=(0, 255, 0)))
    pixels = np.asarray(result.image)
    assert tuple(pixels[10, 50]) == (0, 255, 0) and tuple(pixels[10, 10]) == (200, 0, 0)
    assert not result.unchanged


def test_opaque_alpha_is_just_dropped():
    rgb, notes = to_rgb(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), (255, 255, 255))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (1, 2, 3) and "opaque" in notes[0]


def _png_with_profile(image: Image.Image, profile: bytes) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", icc_profile=profile)
    return buffer.getvalue()


def test_colour_profiles_convert_to_srgb_or_warn():
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = check_image(_png_with_profile(image, srgb), "srgb.png", ImageRules(resolution=64))
    assert plain.accepted and plain.unchanged and not plain.conversions
    # the same profile under another name stands in for a wide-gamut one: it must be converted, not ignored
    renamed = srgb.replace("sRGB built-in".encode("utf-16-be"), "Wide built-in".encode("utf-16-be"))
    wide = check_image(_png_with_profile(image, renamed), "wide.png", ImageRules(resolution=64))
    assert wide.conversions == ["converted colour profile 'Wide built-in' to sRGB"] and not wide.unchanged
    assert wide.image.getpixel((0, 0)) == (10, 200, 30)
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # cannot describe RGB pixels
    broken = check_image(_png_with_profile(image, lab), "lab.png", ImageRules(resolution=64))
    assert broken.accepted and [w.code for w in broken.warnings] == ["colour-profile"]


def test_pixel_hash_ignores_the_container_and_phash_sees_near_copies():
    image = world.render(world.Scene("star", "yellow", "brown"), 96)
    assert pixel_sha256(image) == pixel_sha256(Image.open(io.BytesIO(png_bytes(image, compress_level=0))))
    recompressed = Image.open(io.BytesIO(jpeg_bytes(image)))
    assert hamming(perceptual_hash(image), perceptual_hash(recompressed)) <= NEAR_DUPLICATE_DISTANCE
    other = world.render(world.Scene("heart", "blue", "white", cx=0.35, cy=0.4, size=0.5), 96)
    assert hamming(perceptual_hash(image), perceptual_hash(other)) > 2 * NEAR_DUPLICATE_DISTANCE
    assert nearest(perceptual_hash(recompressed), {"a": perceptual_hash(other), "b": perceptual_hash(image)})[0] == "b"


def test_slugs_and_unique_names():
    assert slugify("Été à Paris!!.png") == "Ete-a-Paris.png"
    assert slugify("..hidden") == "hidden"
    assert slugify("猫").startswith("image-") and slugify("猫") != slugify("犬")
    assert slugify("nul") == "_nul" and slugify("a/b\\c:d") == "a-b-c-d"
    taken: set[str] = set()
    assert [unique_name("x", ".png", taken) for _ in range(3)] == ["x.png", "x-2.png", "x-3.png"]
    assert unique_name("X", ".png", taken) == "X-4.png"  # case-insensitive file systems


def _tiff_with_compression(code: int) -> bytes:
    """A valid small TIFF whose compression tag (259) says `code`, as a WebP-compressed TIFF's does."""
    import struct

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    offset = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[offset : offset + 2])[0]):
        entry = offset + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 259:
            data[entry + 8 : entry + 10] = struct.pack("<H", code)
    return bytes(data)


def test_a_tiff_in_a_compression_pillow_cannot_decode_is_named_not_called_damaged() -> None:
    result = check_image(_tiff_with_compression(50001), "scan.tif")
    if result.accepted:
        pytest.skip("this Pillow's libtiff decodes WebP TIFFs")
    assert result.rejection.code == "unsupported-compression"
    assert "TIFF compressed with WebP" in result.rejection.message and "PNG" in result.rejection.message
    assert "damaged" not in result.rejection.message
