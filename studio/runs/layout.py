"""Every file name in a run folder, in one table: the training side writes these, generate, evaluate and the UI read
them, and none of them spells a name out again.

    runs/<id>/
      config.yaml  dataset.json  events.jsonl  control.json  name.json
      samples/                      validation images
      checkpoints/step-NNNNNN/      trainable.safetensors, training_state.pt, state.json
      outputs/                      the exports:
        lora-diffusers/pytorch_lora_weights.safetensors    LoRA (diffusers), DreamBooth LoRA
        lora-kohya.safetensors                             LoRA (kohya / A1111 / ComfyUI)
        learned_embeds.safetensors                         Textual Inversion (diffusers)
        svdiff.safetensors                                 SVDiff spectral shifts
        pipeline/                                          DreamBooth and full fine-tune (diffusers folder)
      downloads/                    exports that are folders, zipped for a browser
"""

from __future__ import annotations

# the run folder itself
CONFIG = "config.yaml"
DATASET = "dataset.json"
EVENTS = "events.jsonl"
CONTROL = "control.json"
NAME_FILE = "name.json"  # {"name": ..., "trigger": ...}; absent in runs made before names existed
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
OUTPUTS = "outputs"
DOWNLOADS = "downloads"
SUBFOLDERS = (SAMPLES, CHECKPOINTS, OUTPUTS)

# inside a checkpoint
TRAINABLE = "trainable.safetensors"
TRAINING_STATE = "training_state.pt"
STATE_JSON = "state.json"

# the exports, inside outputs/
LORA_FOLDER = "lora-diffusers"
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' own name: `pipe.load_lora_weights(folder)` finds it
KOHYA_FILE = "lora-kohya.safetensors"
EMBEDDING_FILE = "learned_embeds.safetensors"
SVDIFF_FILE = "svdiff.safetensors"
PIPELINE_FOLDER = "pipeline"
