"""Generation parameters stored inside each PNG, so an image can be reproduced.

Two text chunks: "parameters" in the AUTOMATIC1111 web UI's human-readable
form (other tools show it), and "studio" with exact JSON that we read back.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, PngImagePlugin

from studio.data.files import write_bytes_atomic

STUDIO_KEY = "studio"


def a1111_text(params: dict) -> str:
    lines = [params.get("prompt", "")]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    fields = {
        "Steps": params.get("steps"),
        "Sampler": params.get("sampler"),
        "CFG scale": params.get("guidance"),
        "Seed": params.get("seed"),
        "Size": f"{params.get('width')}x{params.get('height')}",
        "Model": params.get("model"),
    }
    lines.append(", ".join(f"{k}: {v}" for k, v in fields.items() if v is not None))
    return "\n".join(lines)


def _png_info(params: dict) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", a1111_text(params))
    info.add_text(STUDIO_KEY, json.dumps(params, sort_keys=True))
    return info


def save_png(image: Image.Image, path: str | Path, params: dict) -> Path:
    path = Path(path)
    write_bytes_atomic(path, png_bytes(image, params))  # whole or not at all, also on a full disk
    return path


def png_bytes(image: Image.Image, params: dict) -> bytes:
    """The PNG file as bytes (an HTTP answer), with the same text chunks as `save_png`."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=_png_info(params))
    return buffer.getvalue()


def read_params(source: str | Path | Image.Image) -> dict | None:
    """The parameters a studio PNG was made with, or None for any other image."""
    image = source if isinstance(source, Image.Image) else Image.open(source)
    raw = getattr(image, "text", {}).get(STUDIO_KEY) or image.info.get(STUDIO_KEY)
    if not raw:
        return None
    try:
        params = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return params if isinstance(params, dict) else None
