"""The studio's API for `gradio_client`: generate, train, run_status and list_runs, over `studio.serve.service`.

Plain functions registered with `gr.api`, so a client calls them by parameter name and the API page documents
them from these signatures and docstrings. The page's own buttons use their own (private) events.
"""

from __future__ import annotations

import gradio as gr

from studio.generate.engine import GenerationEngine
from studio.serve import service
from studio.serve.admission import Admission, Busy
from studio.ui.errors import friendly, refusal
from studio.ui.gallery import saved_for_page
from studio.workspace import Workspaces

DEFAULT_PRESET = "lora-pocket"


def register(engine: GenerationEngine, workspaces: Workspaces, admission: Admission) -> None:
    """The endpoints; generated images go to the outputs/ folder of the caller's workspace (a public studio: the
    client's own, as a visitor's)."""
    access = service.ApiAccess.of(workspaces)

    def generate(
        prompt: str,
        negative_prompt: str = "",
        seed: int = 0,
        steps: int = 25,
        guidance: float = 6.0,
        width: int = 0,
        height: int = 0,
        sampler: str = "default",
        count: int = 1,
        loras: dict[str, float] | None = None,
        model: str = "pocket",
    ) -> tuple[list[dict], list[dict]]:
        """Generate images: returns the PNG files (with their settings inside) and each image's parameters.
        width/height 0: the model's native size; seed -1: random; loras: {"runs/<run id>": 0.8, ...} by their
        place in the data folder; sampler: default, dpmpp_2m, dpmpp_2m_karras, euler_a, euler, ddim, unipc, lcm."""
        settings = service.generation_settings(
            access, prompt, negative_prompt, int(seed), int(steps), float(guidance), int(width), int(height),
            sampler, int(count), model, loras,
        )  # fmt: skip
        workspaces.get().check_room()  # the images are stored in the caller's workspace
        try:
            results = service.generate(engine, admission, settings)
        except Busy as busy:
            raise refusal(f"busy: {busy} (retry in about {busy.retry_after} s)") from None
        # a dict with this meta is a file to Gradio: it copies it into its cache and the client downloads it
        files = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in saved_for_page(workspaces, results)]
        return files, [service.echoed(result, loras) for result in results]

    def train(dataset: str, preset: str = DEFAULT_PRESET, settings: dict | None = None) -> dict:
        """Start a training run on a saved dataset from a preset, with `settings` ({"steps": 40, ...}) on top.
        Returns the run id; poll `run_status` with it. One run trains at a time."""
        run_dir = service.start_from_preset(workspaces.get(), preset, dataset, settings)
        return {"run_id": run_dir.name}

    def run_status(run_id: str) -> dict:
        """A run's status, last step, total steps, last loss, sample count and checkpoints, from its folder."""
        return service.run_status(workspaces.get(), run_id)

    def list_runs() -> list[dict]:
        """Every run, newest first, each as `run_status` describes it."""
        return service.list_runs(workspaces.get())

    gr.api(friendly(generate), api_name="generate", concurrency_id="engine")
    gr.api(friendly(train), api_name="train")
    gr.api(friendly(run_status), api_name="run_status")
    gr.api(friendly(list_runs), api_name="list_runs")
