"""The REST API's Swagger page in a real browser with every request to another host refused: it must render the
API from what the studio itself serves (a workstation or a Space may have no route to a CDN), and its example
request must work as it stands ("Try it out", "Execute")."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_the_swagger_page_renders_the_api_with_no_internet(browser, studio_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(studio_server["url"]):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.goto(studio_server["url"] + "/api/v1/docs")
    # Swagger UI draws one block per operation once its script ran and the schema loaded
    generate = page.locator(".opblock-summary-path", has_text="/api/v1/generate")
    expect(generate.first).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/runs/{run_id}").first).to_be_visible()
    generate.first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    answer = page.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_have_text("200", timeout=60_000)
    expect(answer.locator(".response-col_description")).to_contain_text('"png_base64"')
    assert elsewhere == []
    context.close()
