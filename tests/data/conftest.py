"""Test corpora for the dataset engine, written at test time (no binary files in git).

`upload_folder` is a folder a user might drag in: good shapes-world images with captions, and next to them
every kind of bad file, each of which must be refused (or warned about) with its own reason.
`upload_zip` does the same for archive-only attacks.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.pocket import world

RESOLUTION = 64  # the pocket model's; test images are 96 px so they pass the size check


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height pixels, with (almost) no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def shape_images(count: int, seed: int, side: int = 96) -> list[tuple[Image.Image, str]]:
    return [(world.render(scene, side), scene.caption) for scene in world.scenes(count, seed)]


def corrupt_png() -> bytes:
    data = bytearray(png_bytes(shape_images(1, 99)[0][0]))
    start = data.find(b"IDAT") + 20
    data[start : start + 40] = b"\x00" * 40  # break the compressed stream, keep the file length
    return bytes(data)


def exif_rotated_jpeg() -> bytes:
    """A 96 x 64 JPEG whose EXIF says "rotate 90° clockwise to view": upright it is 64 x 96."""
    image = Image.new("RGB", (96, 64), (240, 240, 240))
    image.paste((220, 40, 40), (0, 0, 16, 64))  # red band on the stored left edge: upright, it is at the top
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg_bytes(image, exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [world.render(world.Scene("circle", c, "black"), 96).convert("P") for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def palette_with_transparency() -> bytes:
    image = Image.new("P", (96, 96), 0)
    image.putpalette([0, 0, 0, 40, 80, 220] + [0] * 762)
    image.paste(1, (24, 24, 72, 72))  # a blue square on colour 0, which is transparent
    return png_bytes(image, transparency=0)


def la_image() -> bytes:
    grey = Image.new("L", (96, 96), 60)
    alpha = Image.new("L", (96, 96), 0)
    alpha.paste(255, (0, 0, 48, 96))  # left half opaque dark grey, right half fully transparent
    return png_bytes(Image.merge("LA", (grey, alpha)))


def sixteen_bit_grey() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 96), (96, 1)).astype(np.uint16)
    return png_bytes(Image.fromarray(ramp))


def cmyk_jpeg() -> bytes:
    return jpeg_bytes(world.render(world.Scene("square", "red", "white", size=0.7), 96).convert("CMYK"))


def near_copy(image: Image.Image) -> bytes:
    """Nearly the same picture: a little noise, as from re-saving or a slight edit."""
    pixels = np.asarray(image).astype(np.int16)
    noise = np.random.default_rng(0).integers(-4, 5, pixels.shape)
    return png_bytes(Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)))


# What each bad file of `upload_folder` must produce: name -> rejection code.
REJECTED_IN_FOLDER = {
    "corrupt.png": "corrupt",
    "truncated.jpg": "truncated",
    "empty.png": "empty-file",
    "notes.png": "not-an-image",
    "bomb.png": "decompression-bomb",
    "tiny.png": "too-small",
    "same-as-good-0.png": "duplicate",
    "readme.pdf": "unsupported-file",
}
# Accepted with a warning: name -> warning code.
WARNED_IN_FOLDER = {
    "animated.gif": "animated",
    "small.png": "smaller-than-resolution",
    "near-copy.png": "near-duplicate",
    "bad-utf8.png": "caption-not-utf8",
    "empty-caption.png": "caption-empty",
    "long-caption.png": "caption-too-long",
    "no-caption.png": "caption-missing",
    "jpeg-named.png": "extension-mismatch",
}


@pytest.fixture
def upload_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "upload"
    folder.mkdir()
    good = shape_images(5, seed=1)
    for index, (image, caption) in enumerate(good):
        (folder / f"good-{index}.png").write_bytes(png_bytes(image))
        (folder / f"good-{index}.txt").write_text(caption + "\n", encoding="utf-8")
    # conversions that must succeed
    (folder / "cmyk.jpg").write_bytes(cmyk_jpeg())
    (folder / "palette.png").write_bytes(palette_with_transparency())
    (folder / "grey-alpha.png").write_bytes(la_image())
    (folder / "grey16.png").write_bytes(sixteen_bit_grey())
    (folder / "rotated.jpg").write_bytes(exif_rotated_jpeg())
    (folder / "Café ☕ (1).png").write_bytes(png_bytes(shape_images(1, seed=7)[0][0]))
    (folder / "CON.png").write_bytes(png_bytes(shape_images(1, seed=8)[0][0]))
    # refused
    (folder / "corrupt.png").write_bytes(corrupt_png())
    whole = jpeg_bytes(shape_images(1, seed=9)[0][0])
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("shopping list: eggs, milk\n")
    (folder / "bomb.png").write_bytes(bomb_png(100_000, 100_000))
    (folder / "tiny.png").write_bytes(png_bytes(Image.new("RGB", (8, 8), (200, 30, 30))))
    (folder / "same-as-good-0.png").write_bytes(png_bytes(good[0][0], compress_level=1))  # other bytes, same pixels
    (folder / "readme.pdf").write_bytes(b"%PDF-1.4 not really")
    # accepted with a warning
    (folder / "animated.gif").write_bytes(animated_gif())
    (folder / "small.png").write_bytes(png_bytes(world.render(world.Scene("ring", "pink", "gray"), 40)))
    (folder / "near-copy.png").write_bytes(near_copy(good[1][0]))
    for name, caption in (("bad-utf8", b"\xff\xfe a red \xe9 circle"), ("empty-caption", b"  \n")):
        image, _ = shape_images(1, seed=hash(name) % 1000 + 20)[0]
        (folder / f"{name}.png").write_bytes(png_bytes(image))
        (folder / f"{name}.txt").write_bytes(caption)
    (folder / "long-caption.png").write_bytes(png_bytes(shape_images(1, seed=31)[0][0]))
    (folder / "long-caption.txt").write_text(" ".join(["a big red circle on a black background"] * 12))
    (folder / "no-caption.png").write_bytes(png_bytes(shape_images(1, seed=32)[0][0]))
    (folder / "jpeg-named.png").write_bytes(jpeg_bytes(shape_images(1, seed=33)[0][0]))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return folder


def _entry(name: str, kind: int = stat.S_IFREG) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (kind | 0o644) << 16  # Unix file type and permissions live in the high 16 bits
    return info


# zip entry -> rejection code
REJECTED_IN_ZIP = {
    "../escape.png": "zip-path-escape",
    "/etc/absolute.png": "zip-path-escape",
    "C:/windows/drive.png": "zip-path-escape",
    "photos/link.png": "zip-link",
    "zeros.png": "zip-bomb",
}


@pytest.fixture(scope="session")
def upload_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zip with good images in concept folders, a metadata.jsonl, and every archive attack beside them.

    Session-wide (only ever read): compressing its 200 MiB of zeros takes about a second.
    """
    path = tmp_path_factory.mktemp("zip") / "upload.zip"
    images = shape_images(6, seed=3)
    with zipfile.ZipFile(path, "w") as archive:
        for index, (image, caption) in enumerate(images[:2]):
            archive.writestr(_entry(f"photos/10_sks dog/dog-{index}.png"), png_bytes(image))
            archive.writestr(_entry(f"photos/10_sks dog/dog-{index}.txt"), caption)
        for index, (image, _) in enumerate(images[2:4]):
            archive.writestr(_entry(f"photos/class/plain-{index}.png"), png_bytes(image))
        # imagefolder captions for the class images, relative to the metadata file's folder
        metadata = "".join(
            f'{{"file_name": "plain-{index}.png", "text": "{caption}"}}\n'
            for index, (_, caption) in enumerate(images[2:4])
        )
        archive.writestr(_entry("photos/class/metadata.jsonl"), metadata + "not json\n")
        archive.writestr(_entry("photos/日本語の写真.png"), png_bytes(images[4][0]))
        archive.writestr(_entry("__MACOSX/photos/._dog-0.png"), b"\x00\x05\x16\x07")
        # attacks
        archive.writestr(_entry("../escape.png"), png_bytes(images[5][0]))
        archive.writestr(_entry("/etc/absolute.png"), png_bytes(images[5][0]))
        archive.writestr(_entry("C:/windows/drive.png"), png_bytes(images[5][0]))
        archive.writestr(_entry("photos/link.png", kind=stat.S_IFLNK), "/etc/passwd")
        with archive.open(_entry("zeros.png"), "w", force_zip64=True) as stream:
            block = bytes(2**20)
            for _ in range(200):  # 200 MiB of zeros, a few hundred KiB compressed
                stream.write(block)
    return path
