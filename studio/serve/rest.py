"""The REST API, `/api/v1/...`, served by the same FastAPI app as the Gradio page (see `app_kwargs`).

Every answer is JSON except a PNG asked for with `"format": "png"`. Errors are JSON too, `{"error": kind,
"message": sentence}` (plus `"field"` when one field is wrong): 400/422 bad input, 403 not offered in this mode,
404 no such run, 503 busy with a Retry-After header, 500 anything unexpected (logged, never a traceback).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

from studio.data.files import write_failure
from studio.generate.engine import GenerationEngine
from studio.generate.png_metadata import png_bytes
from studio.serve import service
from studio.serve.admission import Admission, Busy
from studio.serve.schemas import GenerateAnswer, GenerateBody, TrainAnswer, TrainBody, error_responses
from studio.train.config import list_presets
from studio.train.jobs import JobBusy
from studio.workspace import Workspaces

log = logging.getLogger("studio.serve")

PREFIX = "/api/v1"
DOCS_URL = f"{PREFIX}/docs"
DOCS_STATIC_URL = f"{PREFIX}/docs-static"
TRAINING_RETRY_SECONDS = 60  # a training run takes minutes; checking back every minute is plenty
UNEXPECTED = "something went wrong on the server; the details are in its log"
# every body these routes take is a few settings; a prompt is at most MAX_PROMPT_BYTES (4 KB). A bigger body is
# refused while it is read, so a 20 MB upload never reaches the JSON parser
MAX_BODY_BYTES = 64 * 1024


def error(status: int, kind: str, message: str, field: str | None = None, retry_after: int | None = None):
    body = {"error": kind, "message": message} | ({"field": field} if field else {})
    headers = {}
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


class NotFound(LookupError):
    pass


class StudioRoute(APIRoute):
    """Turns every failure of a route into one of the JSON errors above. Scoped to our routes (FastAPI's way to
    customise one router's error handling), so the Gradio routes on the same app keep their own behaviour."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            if not await read_body_within(request, MAX_BODY_BYTES):
                return error(413, "invalid", f"the request body is over {MAX_BODY_BYTES} bytes, the limit of this API")
            try:
                return await handler(request)
            except RequestValidationError as invalid:
                first = invalid.errors()[0]
                if first["type"] == "json_invalid":  # its loc holds the character position, not a field
                    reason = first.get("ctx", {}).get("error", "")
                    return error(422, "invalid", f"the body is not valid JSON: {reason} (character {first['loc'][-1]})")
                field = ".".join(str(part) for part in first["loc"] if part != "body") or None
                message = f"{field}: {first['msg']}" if field else first["msg"]
                return error(422, "invalid", message, field=field)
            except Busy as busy:
                return error(503, "busy", str(busy), retry_after=busy.retry_after)
            except JobBusy as busy:  # before ValueError: JobBusy is one
                return error(503, "busy", str(busy), retry_after=TRAINING_RETRY_SECONDS)
            except service.Forbidden as forbidden:
                return error(403, "forbidden", str(forbidden), field=str(forbidden).partition(":")[0])
            except NotFound as missing:
                return error(404, "not_found", str(missing.args[0]))
            except (ValueError, OSError) as bad:
                failure = write_failure(bad)
                if failure is not None:  # the server's disk, not the request: 507 Insufficient Storage
                    log.warning("%s %s: %s", request.method, request.url.path, failure)
                    return error(507, "storage", str(failure))
                return error(400, "invalid", str(bad.args[0] if isinstance(bad, KeyError) else bad))
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                return error(500, "internal", UNEXPECTED)

        return answer


async def read_body_within(request: Request, limit: int) -> bool:
    """Read the body, stopping as soon as it is over `limit` bytes (False then). Its declared length is believed
    only when it says too much: a chunked body has none, so the bytes are counted as they come."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return False
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return False
    request._body = bytes(body)  # Starlette's own cache: the route's handler reads the body from here
    return True


def build_router(engine: GenerationEngine, workspaces: Workspaces, admission: Admission) -> APIRouter:
    access = service.ApiAccess.of(workspaces)
    router = APIRouter(prefix=PREFIX, route_class=StudioRoute, tags=["studio"])

    def private_workspace(what: str):
        # a public studio keeps one workspace per browser; a REST caller has no visitor id, so it gets none
        if access.public:
            raise service.Forbidden(f"{what}: not offered over REST by a public studio; use the page or gradio_client")
        return workspaces.get()

    @router.get("/health", responses=error_responses())
    def health() -> dict:
        """Whether the server answers, its mode, and how busy generation and training are."""
        training = None if access.public else [s.run_id for s in workspaces.get().jobs.running()]
        return {
            "status": "ok",
            "public": access.public,
            "models": list(access.allowed_models) if access.allowed_models else None,
            "generation": admission.snapshot(),
            "training": {"running": training},
        }

    @router.post(
        "/generate",
        responses={200: {"model": GenerateAnswer, "content": {"image/png": {}}}}
        | error_responses(400, 403, 413, 422, 503, 507),
    )
    def generate(body: GenerateBody):
        """Generate images. JSON out (each image base64 with its parameters), or one image/png with the parameters
        in the X-Generation-Parameters header. 503 "busy" when the server already has enough to do."""
        if body.format == "png" and body.count != 1:
            raise ValueError(f"count: format png returns one image; ask for count 1 or format json, not {body.count}")
        settings = service.generation_settings(access, **body.settings_fields())
        results = service.generate(engine, admission, settings)
        echoes = [service.echoed(result, body.loras) for result in results]
        if body.format == "png":
            return Response(
                png_bytes(results[0].image, results[0].params),
                media_type="image/png",
                headers={"X-Generation-Parameters": json.dumps(echoes[0])},
            )
        return {
            "images": [
                {"png_base64": base64.b64encode(png_bytes(r.image, r.params)).decode("ascii"), "parameters": echo}
                for r, echo in zip(results, echoes)
            ]
        }

    @router.get("/presets", responses=error_responses())
    def presets() -> dict:
        """Training presets by name."""
        return {"presets": list_presets()}

    @router.get("/datasets", responses=error_responses(403))
    def datasets() -> dict:
        """Datasets (and prepared copies) a run can train on, by the name `POST /train` takes."""
        return {"datasets": [choice for _, choice in private_workspace("datasets").training_sources()]}

    @router.post(
        "/train",
        status_code=202,
        responses={202: {"model": TrainAnswer}} | error_responses(400, 403, 413, 422, 503, 507),
    )
    def train(body: TrainBody) -> dict:
        """Start a training run (one at a time: 503 "busy" while one trains); poll GET /runs/{run_id}."""
        run_dir = service.start_from_preset(private_workspace("training"), body.preset, body.dataset, body.settings)
        return {"run_id": run_dir.name, "status_url": f"{PREFIX}/runs/{run_dir.name}"}

    @router.get("/runs", responses=error_responses(403))
    def list_runs() -> dict:
        """Every run, newest first: status, last step, total steps, last loss."""
        return {"runs": service.list_runs(private_workspace("runs"))}

    @router.get("/runs/{run_id}", responses=error_responses(403, 404))
    def run_status(run_id: str) -> dict:
        """One run: status (created, running, finished, failed, cancelled, interrupted), last step, loss."""
        ws = private_workspace("runs")
        try:
            return service.run_status(ws, run_id)
        except ValueError as missing:
            raise NotFound(str(missing)) from None

    return router


def app_kwargs(engine: GenerationEngine, workspaces: Workspaces, admission: Admission) -> dict:
    """Arguments for the FastAPI app Gradio builds (`Blocks.launch(app_kwargs=...)`): our routes come first in it.

    The app's own OpenAPI schema would list Gradio's hundred internal routes too, so it is off and ours describes
    /api/v1 alone. Its Swagger page takes its script and style from the fastapi-offline package, served here, so the
    page works on a machine with no internet (FastAPI's default page loads them from a CDN)."""
    router = build_router(engine, workspaces, admission)
    api_routes = list(router.routes)
    schema: dict = {}

    def openapi() -> dict:
        if not schema:
            from fastapi.openapi.utils import get_openapi

            schema.update(get_openapi(title="Diffusion Studio API", version="1", routes=api_routes))
        return schema

    def docs():
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=f"{PREFIX}/openapi.json",
            title="Diffusion Studio API",
            swagger_js_url=f"{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC_URL}/favicon.png",
        )

    router.add_api_route("/openapi.json", openapi, include_in_schema=False)
    router.add_api_route("/docs", docs, include_in_schema=False)
    static = Mount(DOCS_STATIC_URL, StaticFiles(directory=_swagger_files()), name="api-docs-static")
    return {"routes": [*router.routes, static], "openapi_url": None, "docs_url": None, "redoc_url": None}


def _swagger_files() -> str:
    """The folder of Swagger UI's script and style that the fastapi-offline package ships."""
    import fastapi_offline

    return str(Path(fastapi_offline.__file__).parent / "static")
