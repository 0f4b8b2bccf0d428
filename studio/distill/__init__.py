"""Distillation: teach a model to sample in fewer steps (latent consistency distillation into a LoRA)."""
