"""Serving: the studio's generation and training for other programs, over HTTP (REST and Gradio's API).

`admission` bounds the generation work a server accepts, `service` holds the engine calls both APIs share, `rest`
is the FastAPI routes mounted on the Gradio server (`/api/v1/...`). No Gradio code here: the Gradio
endpoints live in `studio.ui.api_endpoints` and call `service`.
"""
