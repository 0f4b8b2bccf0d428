"""The Gradio studio: one module per tab. UI code only: no torch, no model math."""
