"""Which exported file each tool reads: shown beside run downloads, the saved mix, and in the README.

Torch-free, so the UI can show it without loading torch.
"""

# Shown with a run's downloads and the playground's saved mix, and in the README (a test keeps them equal).
WHICH_FILE_FOR_WHICH_TOOL = """
| Tool | LoRA file to use | Notes |
|---|---|---|
| diffusers | `lora-diffusers/pytorch_lora_weights.safetensors` (or the kohya file) | `pipe.load_lora_weights(folder)` |
| ComfyUI | `lora-kohya.safetensors` | it leaves most of the diffusers-format file unread |
| A1111 / Forge | `lora-kohya.safetensors` | into `models/Lora`; embeddings (`.safetensors`) into `embeddings` |
| kohya sd-scripts | `lora-kohya.safetensors` | `--network_weights`; it skips conv_in / conv_out layers (the export warns) |
"""
