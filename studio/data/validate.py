"""Open one uploaded image safely: accepted as plain upright sRGB, or rejected with a specific reason.

Order matters for safety. The header is read first (Pillow opens lazily) and the declared pixel count is
checked before a single pixel is decoded, so a decompression bomb costs nothing. Only the decoders of
common photo formats are ever tried (`SAFE_FORMATS`), so a file cannot route itself into, say, Ghostscript.
Everything that is accepted comes out the same way: EXIF orientation applied, colour profile converted to
sRGB, transparency composited on a chosen background, 16-bit scaled (not clipped) to 8-bit, first frame of
an animation.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import PurePath
from struct import error as struct_error

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from studio.data.fingerprints import perceptual_hash, pixel_sha256
from studio.data.issues import Issue

# Decoders the studio lets Pillow use.
# (multi-picture JPEGs, "MPO", come through the JPEG decoder)
SAFE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
IMAGE_SUFFIXES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jfif": "JPEG",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# Formats whose bytes can be stored as they came when nothing had to change (no re-encode, no new artefacts).
STORED_AS_IS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp"}
_ORIENTATION_TAG = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ImageRules:
    """What an accepted image must satisfy; the UI shows these numbers and helps next to the upload."""

    resolution: int = field(
        default=512, metadata=_help("Training resolution: images with a shorter side get a warning (upscaled).")
    )
    too_small_fraction: float = field(
        default=0.25,
        metadata=_help("Refuse images whose short side is under this fraction of the resolution (4x upscaling)."),
    )
    # 64 MP is more than any camera photo and far below what would exhaust memory (~200 MB as RGB)
    max_pixels: int = field(default=64_000_000, metadata=_help("Refuse images declaring more pixels than this."))
    max_file_bytes: int = field(default=100 * 2**20, metadata=_help("Refuse files larger than this."))
    background: tuple[int, int, int] = field(
        default=(255, 255, 255), metadata=_help("Colour that transparent pixels are composited on.")
    )
    max_aspect: float = field(
        default=4.0, metadata=_help("Warn about images longer than this : 1 (crops will cut much of them).")
    )

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise ValueError(f"resolution must be at least 8 pixels, got {self.resolution}")
        if not 0 < self.too_small_fraction <= 1:
            raise ValueError(f"too_small_fraction must be in (0, 1], got {self.too_small_fraction}")
        if self.max_pixels < 1 or self.max_file_bytes < 1:
            raise ValueError("max_pixels and max_file_bytes must be positive")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be three values 0-255, got {self.background}")


@dataclass
class CheckedImage:
    source: str
    rejection: Issue | None = None
    warnings: list[Issue] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)  # what was done to the pixels, for the manifest
    image: Image.Image | None = None  # RGB, upright, sRGB
    format: str | None = None
    # True when the file decodes to `image` as it is, so its bytes can be stored unchanged
    unchanged: bool = False
    pixel_sha256: str = ""
    phash: int = 0

    @property
    def accepted(self) -> bool:
        return self.rejection is None


def _rejected(source: str, code: str, message: str) -> CheckedImage:
    return CheckedImage(source, rejection=Issue(code, message))


def file_size_issue(size: int, rules: ImageRules) -> Issue | None:
    if size <= rules.max_file_bytes:
        return None
    return Issue("file-too-large", f"{size / 2**20:.0f} MiB is over the {rules.max_file_bytes / 2**20:.0f} MiB limit")


# TIFF compressions Pillow's bundled libtiff may be built without (tag 259); their files are not damaged
_TIFF_COMPRESSIONS = {50001: "WebP", 50000: "Zstandard", 34925: "LZMA", 34712: "JPEG 2000", 34887: "LERC"}
_TIFF_COMPRESSION_TAG = 259


def _decode_failure(source: str, error: Exception, opened: Image.Image | None = None) -> CheckedImage:
    text = str(error) or type(error).__name__
    if opened is not None and opened.format == "TIFF":
        compression = opened.tag_v2.get(_TIFF_COMPRESSION_TAG)
        if compression in _TIFF_COMPRESSIONS:
            return _rejected(
                source,
                "unsupported-compression",
                f"a TIFF compressed with {_TIFF_COMPRESSIONS[compression]}, which this installation cannot decode; "
                "save it as PNG, or as TIFF with LZW or Deflate compression",
            )
    if "truncated" in text.lower():
        return _rejected(source, "truncated", f"the file ends early ({text}); re-export or re-download it")
    return _rejected(source, "corrupt", f"the image data is damaged ({text})")


def _scale_sixteen_bit(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) grey to 8-bit by scaling; Pillow's own convert would clip everything above 255."""
    values = np.asarray(image).astype(np.float64)
    top = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
    return Image.fromarray(np.round(values * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image, background: tuple[int, int, int]) -> tuple[Image.Image, list[str]]:
    """Any Pillow mode to RGB, and a note of what was done."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image, []
    if mode in _SIXTEEN_BIT_MODES:
        return _scale_sixteen_bit(image).convert("RGB"), [f"scaled {mode} to 8-bit grey, then RGB"]
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) <= 1.0:  # floats in 0..1, as float TIFFs usually are
            values = values * 255.0
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L").convert("RGB"), ["scaled float grey to RGB"]
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] == 255:  # alpha present but fully opaque: nothing to blend
            return rgba.convert("RGB"), [f"converted {mode} to RGB (alpha fully opaque)"]
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas, [f"composited {mode} transparency on RGB{background}"]
    return image.convert("RGB"), [f"converted {mode} to RGB"]


def _to_srgb(image: Image.Image, icc: bytes) -> tuple[Image.Image, str | None]:
    """Convert pixels described by an embedded ICC profile to sRGB; (image, note) or (image, None) if already sRGB."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    description = ImageCms.getProfileDescription(profile).strip()
    if "srgb" in description.lower():
        return image, None
    out_mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
    converted = ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode=out_mode)
    return converted, f"converted colour profile '{description}' to sRGB"


def _open_header(data: bytes, source: str, rules: ImageRules) -> Image.Image | CheckedImage:
    """Parse only the header; a CheckedImage is a rejection."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns first and errors at twice its limit; both are refusals here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=SAFE_FORMATS)
    except UnidentifiedImageError:
        return _rejected(
            source,
            "not-an-image",
            f"not an image in a supported format ({', '.join(sorted(set(IMAGE_SUFFIXES.values())))})",
        )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return _rejected(source, "decompression-bomb", f"refused before decoding: {error}")
    except (OSError, SyntaxError, ValueError, struct_error) as error:
        return _decode_failure(source, error)
    width, height = opened.size
    if width * height > rules.max_pixels:
        return _rejected(
            source,
            "decompression-bomb",
            f"declares {width} x {height} = {width * height / 1e6:.0f} MP, over the {rules.max_pixels / 1e6:.0f} MP "
            "limit; refused before decoding",
        )
    if width < 1 or height < 1:
        return _rejected(source, "corrupt", f"declares an empty size {width} x {height}")
    return opened


def check_image(data: bytes, source: str, rules: ImageRules | None = None) -> CheckedImage:
    """Decide about one file's bytes. Never raises for bad input: every outcome is a CheckedImage."""
    rules = rules or ImageRules()
    if not data:
        return _rejected(source, "empty-file", "the file is empty (0 bytes)")
    too_large = file_size_issue(len(data), rules)
    if too_large:
        return CheckedImage(source, rejection=too_large)
    opened = _open_header(data, source, rules)
    if isinstance(opened, CheckedImage):
        return opened

    result = CheckedImage(source, format=opened.format)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            animated = bool(getattr(opened, "is_animated", False))
            if animated:
                frames = getattr(opened, "n_frames", "several")
                opened.seek(0)
                result.warnings.append(
                    Issue("animated", f"{frames} frames (animated or multi-picture); only the first is used")
                )
            opened.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return _rejected(source, "decompression-bomb", f"refused: {error}")
    except (OSError, SyntaxError, ValueError, EOFError, struct_error) as error:
        return _decode_failure(source, error, opened)

    image = opened
    try:
        orientation = int(opened.getexif().get(_ORIENTATION_TAG, 1) or 1)
        if orientation != 1:
            image = ImageOps.exif_transpose(opened)
            result.conversions.append(f"applied EXIF orientation {orientation}")
    except Exception as error:  # EXIF parsers raise many types on malformed data; any of them means the same
        result.warnings.append(Issue("bad-exif", f"EXIF data is malformed ({error}); orientation not applied"))

    icc = opened.info.get("icc_profile")
    if icc:
        try:
            image, note = _to_srgb(image, icc)
            if note:
                result.conversions.append(note)
        except (ImageCms.PyCMSError, OSError, ValueError) as error:
            result.warnings.append(
                Issue("colour-profile", f"embedded colour profile unusable ({error}); colours may look off")
            )

    rgb, notes = to_rgb(image, rules.background)
    result.conversions += notes
    result.image = rgb
    result.unchanged = (
        opened.format in STORED_AS_IS and not animated and not result.conversions and opened.mode == "RGB"
    )
    _check_size(result, rgb.size, rules)
    if result.rejection is None:
        result.pixel_sha256 = pixel_sha256(rgb)
        result.phash = perceptual_hash(rgb)
    return result


def _check_size(result: CheckedImage, size: tuple[int, int], rules: ImageRules) -> None:
    width, height = size
    short, long = min(size), max(size)
    floor = max(1, round(rules.resolution * rules.too_small_fraction))
    if short < floor:
        result.rejection = Issue(
            "too-small",
            f"{width} x {height} is too small: the short side is under {floor} px ({rules.too_small_fraction:.0%} of "
            f"the {rules.resolution} px training resolution), so it would be upscaled more than "
            f"{1 / rules.too_small_fraction:.0f}x",
        )
        result.image = None
        return
    if short < rules.resolution:
        result.warnings.append(
            Issue(
                "smaller-than-resolution",
                f"{width} x {height} is smaller than the {rules.resolution} px training resolution; kept, but it "
                "will be upscaled and look softer",
            )
        )
    if long / short > rules.max_aspect:
        result.warnings.append(
            Issue(
                "extreme-aspect", f"{width} x {height} is longer than {rules.max_aspect:g}:1; crops will cut much of it"
            )
        )


def extension_warning(name: str, image_format: str | None) -> Issue | None:
    """A note when a file's suffix claims another format than its content (the stored copy gets the right one)."""
    claimed = IMAGE_SUFFIXES.get(PurePath(name).suffix.lower())
    actual = "JPEG" if image_format == "MPO" else image_format
    if claimed and actual and claimed != actual:
        return Issue("extension-mismatch", f"named {PurePath(name).suffix} but the content is {actual}")
    return None
