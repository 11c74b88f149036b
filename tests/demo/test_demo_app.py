"""The demo as users and scripts meet it: `mobile-mllm demo` in a subprocess, driven by Debian's
Chromium (Playwright) and by gradio_client; answers are checked against a plain Session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "demo" / "sample.png"
MODEL = "builtin:synth-small"
MAX_NEW_TOKENS = 12
QUESTIONS = ("What colour is the star?", "What shape is red?")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mobile_mllm.cli", "demo", MODEL, "--port", str(port), "--max-new-tokens", str(MAX_NEW_TOKENS)],
            stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the demo did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def reference() -> list[str]:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    session = Session.from_dir(MODEL, generation=GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))
    return [session.ask(QUESTIONS[0], str(SAMPLE)).text, session.ask(QUESTIONS[1]).text]


def test_browser_upload_ask_follow_up(app_url: str, reference: list[str], tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.locator("#image input[type=file]").set_input_files(str(SAMPLE))
        page.wait_for_function("() => document.querySelector('#grid-info').innerText.includes('image tokens')", timeout=60_000)
        assert "3x2" in page.locator("#grid-info").inner_text()  # the built-in model's grid for this image

        stats = page.locator("#stats")
        page.locator("#question textarea").fill(QUESTIONS[0])
        page.locator("#ask").click()
        bot = page.locator("#chatbot [data-testid=bot]")
        playwright.expect(stats).to_contain_text("7 tiles, 252 image tokens", timeout=90_000)
        playwright.expect(stats).to_contain_text("0 tokens reused")
        playwright.expect(bot.last).to_have_text(reference[0].strip())

        page.locator("#question textarea").fill(QUESTIONS[1])
        page.locator("#ask").click()
        playwright.expect(stats).to_contain_text("0 tiles, 0 image tokens", timeout=90_000)  # follow-up: not encoded again
        playwright.expect(stats).not_to_contain_text("0 tokens reused")  # the image's KV cache was reused
        playwright.expect(bot).to_have_count(2)
        playwright.expect(bot.last).to_have_text(reference[1].strip())
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        browser.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_gradio_client_api(app_url: str, reference: list[str], tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    history, stats, question = client.predict(
        QUESTIONS[0], handle_file(str(SAMPLE)), f"{MODEL} (eager)", "model's own", 0, 0, [], api_name="/ask"
    )
    assert history[-1]["role"] == "assistant"
    assert history[-1]["content"][0]["text"].strip() == reference[0].strip()
    assert "252 image tokens" in stats and question == ""

    bad = tmp_path / "truncated.png"
    bad.write_bytes(SAMPLE.read_bytes()[:300])
    history, stats, _ = client.predict(QUESTIONS[0], handle_file(str(bad)), f"{MODEL} (eager)", "model's own", 0, 0, [],
                                       api_name="/ask")
    assert stats.startswith("**Error:**") and "truncated" in stats.lower()
    assert history == []  # the refused question is not left in the chat
