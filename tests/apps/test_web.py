"""`vad serve`: the Gradio app driven through gradio_client (upload → scores, errors, 20 concurrent requests) and
through headless Chromium (upload, score, screenshot; a rejected upload's persistent message)."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.media import write_video

pytest.importorskip("gradio")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

CHROMIUM = Path("/usr/bin/chromium")


def _random_named_model(model: Path, out: Path) -> Path:
    """A copy of ``model`` whose backbone weights file is named as the demo names a random one (``*-random-*``)."""
    shutil.copytree(model, out)
    info = json.loads((out / "config.json").read_text())
    bb = info["backbone"]
    weights = Path(bb.get("weights_abs") or bb["weights"])
    if not weights.is_absolute():
        weights = (model / weights).resolve()
    bb["weights"] = str(shutil.copy(weights, out.parent / "tiny-random-seed0.safetensors"))
    bb.pop("weights_abs", None)
    (out / "config.json").write_text(json.dumps(info))
    return out


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory, free_port):
    """The app on 127.0.0.1 (a free port), with the bundled synthetic example, over a model with a random-named
    backbone file (as the demo writes); closed after the module."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from apps.demo import example_video
    from apps.web import build_app, launch
    from vad.engine.score import ScoreConfig, Scorer
    from vad.engine.segments import SegmentConfig

    work = tmp_path_factory.mktemp("serve")
    model = _random_named_model(trained_model, tmp_path_factory.mktemp("random-model") / "model")
    scorer = Scorer(model, ScoreConfig(SegmentConfig(0.3), device="cpu"))
    app = build_app(scorer, [example_video(work)], max_upload_mb=1, work_dir=work)
    port = free_port()
    launch(app, "127.0.0.1", port, max_upload_mb=5, block=False, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "work": work, "prompts": scorer.prompts}
    app.close()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("uploads")
    return {
        "good": write_video(d / "street.mp4", num_frames=40, seed=4),
        "text": _write(d / "notes.mp4", "not a video\n" * 50),
        "type": _write(d / "readme.txt", "hello"),
        "big": _write(d / "huge.mp4", "0" * (2 * 2**20)),  # over the 1 MB limit of this app
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_upload_scores_and_threshold_rethresholds(server, videos):
    client = Client(server["url"], verbose=False)
    player, plot, status, table, _gallery, captions, files, summary = client.predict(
        handle_file(str(videos["good"])), 0.3, api_name="/score")
    assert summary["video"] == "street" and summary["num_frames"] == 40
    # converted for the browser's player (mp4v is not playable)
    assert Path(player if isinstance(player, str) else player["video"]).suffix == ".mp4"
    assert 0.0 <= summary["max_score"] <= 1.0
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image")
    assert "street" in status and "segment" in status
    assert captions.count("peak") == min(len(summary["segments"]), 6)
    assert table["headers"][0] == "#" and len(table["data"]) == len(summary["segments"])
    assert sorted(Path(f).name for f in files) == ["street.png", "street.scores.csv", "street.segments.json"]
    csv_rows = Path(files[[Path(f).name for f in files].index("street.scores.csv")]).read_text().splitlines()
    assert csv_rows[0] == "frame,time_s,score" and len(csv_rows) == 41
    # the slider recomputes segments from the kept scores: at threshold 0 the whole video is one segment
    *_, gallery0, captions0, _, summary0 = client.predict(0.0, api_name="/threshold")
    assert summary0["threshold"] == 0.0 and len(summary0["segments"]) == 1
    assert summary0["segments"][0]["start_frame"] == 0 and summary0["segments"][0]["end_frame"] == 40
    assert len(gallery0) == 1 and "peak" in gallery0[0]["caption"]
    assert captions0 == f"1. {gallery0[0]['caption']}"
    *_, summary1 = client.predict(1.0, api_name="/threshold")
    assert summary1["segments"] == [] or all(s["peak_score"] >= 1.0 for s in summary1["segments"])


@pytest.mark.parametrize("kind, message", [("text", "not a video"), ("type", "(?i)file type"),
                                           ("big", "upload limit")])
def test_bad_upload_is_a_clear_error_and_server_keeps_serving(server, videos, kind, message):
    client = Client(server["url"], verbose=False)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(videos[kind])), 0.5, api_name="/score")
    *_, summary = client.predict(handle_file(str(videos["good"])), 0.5, api_name="/score")
    assert summary["video"] == "street"


@pytest.mark.parametrize("kind, message", [("text", "not a video"), ("big", "upload limit")])
def test_bad_upload_in_the_browser_is_a_message_in_the_status(server, videos, kind, message):
    """The Score button's handler answers a rejected upload (no exception) with the message in the status and
    every other output empty (no toast, no error badges in the browser)."""
    client = Client(server["url"], verbose=False)
    player, plot, status, table, gallery, captions, files, summary = client.predict(
        handle_file(str(videos[kind])), 0.5, api_name="/score_ui")
    assert re.search(message, status) and status.startswith("⚠️")
    assert str(server["work"]) not in status and "/tmp" not in status
    assert player is None and plot is None and summary is None and not gallery and not captions and not files
    assert not table["data"] or table["data"] == [[""] * len(table["headers"])]
    *_, summary = client.predict(handle_file(str(videos["good"])), 0.5, api_name="/score")
    assert summary["video"] == "street"


def test_no_video_is_a_clear_error(server):
    with pytest.raises(AppError, match="Upload a video"):
        Client(server["url"], verbose=False).predict(None, 0.5, api_name="/score")
    status = Client(server["url"], verbose=False).predict(None, 0.5, api_name="/score_ui")[2]
    assert "Upload a video" in status


def test_random_backbone_detection():
    from apps.web import is_random_backbone

    assert is_random_backbone("random") and is_random_backbone("random:7")
    assert is_random_backbone("/w/weights/vad-tiny-random-seed0.safetensors")
    assert not is_random_backbone("openai") and not is_random_backbone("/w/ViT-B-16.safetensors")
    assert not is_random_backbone("/w/random-dir/ViT-B-16.safetensors") and not is_random_backbone(None)


def test_fusion_figure_is_relative_to_uniform_initialisation():
    import numpy as np

    from vad.engine.report import fusion_figure

    fig = fusion_figure({"clip*frame": np.full((3, 3), 1 / 9) + np.eye(3) * 0.05})
    image = fig.axes[0].images[0]
    assert np.allclose(image.get_array(), np.eye(3) * 0.05)
    assert image.get_clim() == pytest.approx((-0.05, 0.05))
    assert "uniform" in fig.get_suptitle()


def test_twenty_concurrent_requests_no_crash(server, videos):
    """20 requests at once (good and bad mixed), each bounded in time; all answered, the server still serves."""
    client = Client(server["url"], verbose=False)
    kinds = ["good", "text"] * 10
    jobs = [client.submit(handle_file(str(videos[k])), 0.5, api_name="/score") for k in kinds]

    def outcome(job):
        try:
            return job.result(timeout=90)[-1]["video"]
        except AppError as exc:
            return f"error: {exc}"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(outcome, jobs))
    assert results.count("street") == 10
    assert all(r.startswith("error: ") and "not a video" in r for k, r in zip(kinds, results) if k == "text")
    *_, summary = client.predict(handle_file(str(videos["good"])), 0.5, api_name="/score")
    assert summary["video"] == "street"


# ------------------------------------------------------------------------------------------------ browser test


class _CDP:
    """Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-terminated JSON)."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.proc, self.out, self.inp = proc, os.fdopen(to_browser, "wb"), os.fdopen(from_browser, "rb")
        self.next_id, self.replies, self.cond = 0, {}, threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := self.inp.read1(1 << 16):
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        self.out.flush()
        with self.cond:
            if not self.cond.wait_for(lambda: self.next_id in self.replies, timeout):
                raise TimeoutError(method)
            reply = self.replies.pop(self.next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def js(self, session: str, expression: str):
        res = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
        return res["result"].get("value")

    def wait_js(self, session: str, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(session, expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")


def _start_chromium(profile: Path) -> _CDP:
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    # chromium reads commands on fd 3 and writes replies on fd 4: bash wires the pipe ends there, then execs
    # (bash, not sh: dash cannot duplicate descriptors above 9)
    wire = f'exec "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-'
    proc = subprocess.Popen(
        ["/bin/bash", "-c", wire, "bash", str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-pipe", "--window-size=1400,1300", "about:blank"],
        pass_fds=(to_r, from_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_r)
    os.close(from_w)
    return _CDP(proc, to_w, from_r)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing (Debian package `chromium`; .ci/run "
                                                   "installs it)")
def test_browser_upload_score_screenshot(server, videos, tmp_path):
    profile = Path(tempfile.mkdtemp(prefix="vad-chromium-"))
    cdp = _start_chromium(profile)
    try:
        target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
        s = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        cdp.call("Emulation.setDeviceMetricsOverride", s, width=1400, height=1300, deviceScaleFactor=1,
                 mobile=False)
        cdp.call("Page.navigate", s, url=server["url"])
        cdp.wait_js(s, "!!document.querySelector('input[type=file]')", 60, "the app to render its upload box")
        root = cdp.call("DOM.getDocument", s)["root"]["nodeId"]
        node = cdp.call("DOM.querySelector", s, nodeId=root, selector="input[type=file]")["nodeId"]
        cdp.call("DOM.setFileInputFiles", s, nodeId=node, files=[str(videos["good"])])
        cdp.wait_js(s, "document.body.innerText.includes('street.mp4')", 60, "the upload to finish")
        cdp.js(s, "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Score').click()")
        status = cdp.wait_js(s, "[...document.querySelectorAll('.prose, .md')].map(e => e.innerText)"
                                ".find(t => t.includes('abnormal segment(s)')) || ''", 90, "the score result")
        assert "street" in status
        cdp.wait_js(s, "!![...document.querySelectorAll('img')].find(i => i.src.startsWith('data:image') "
                       "&& i.naturalWidth > 300)", 30, "the score plot")
        cdp.wait_js(s, "(document.querySelector('video') || {}).readyState >= 1", 30, "the player to load the video")
        time.sleep(0.5)  # let the gallery and heatmap images finish decoding
        assert not cdp.js(s, "document.body.innerText.includes('not playable')")
        # the random-backbone banner, on top of the page
        banner = cdp.js(s, "(document.getElementById('random-banner') || {}).innerText || ''")
        assert "RANDOM-initialised backbone" in banner and "not what real CLIP weights would find" in banner
        assert cdp.js(s, "document.getElementById('random-banner').getBoundingClientRect().top") < 120
        # the score plot spans the page; its smallest text (10 pt at 100 dpi: 13.9 px) is shown at >= 11 px
        width, natural = cdp.js(s, "(() => { const i = document.querySelector('#score-plot img'); "
                                   "return [i.getBoundingClientRect().width, i.naturalWidth]; })()")
        assert width > 1100 and width / natural * 10 * 100 / 72 >= 11, (width, natural)
        # the segment table names a prompt; the gallery's captions are shown whole under it
        prompts = json.dumps(server["prompts"][1:])
        table = cdp.wait_js(s, f"(() => {{ const t = [...document.querySelectorAll('table')].map(e => e.textContent)"
                               f".join(' '); return {prompts}.some(p => t.includes(p)) ? t : ''; }})()", 15,
                            "a segment row with its prompt in the table")
        assert "best-matching prompt" in table
        captions = cdp.js(s, "document.getElementById('segment-captions').innerText")
        assert "peak" in captions and "–" in captions and any(p in captions for p in server["prompts"][1:])
        assert cdp.js(s, "document.querySelectorAll('#segments-gallery img').length") >= 1
        assert "What the model relies on" in cdp.js(s, "document.body.innerText")
        assert "relative to the uniform initialisation" in cdp.js(
            s, "document.getElementById('fusion-caption').innerText")
        shot = cdp.call("Page.captureScreenshot", s, format="png", captureBeyondViewport=True)["data"]
        path = tmp_path / "vad-serve.png"
        path.write_bytes(base64.b64decode(shot))
        artifacts = Path(os.environ.get("VAD_TEST_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        if artifacts != tmp_path:
            shutil.copy(path, artifacts / path.name)
        print(f"screenshot: {artifacts / path.name}")
        assert path.stat().st_size > 20_000

        # a text file renamed .mp4: one message in the status area that stays; no toast, no error badges, no path
        cdp.call("Page.navigate", s, url=server["url"])
        cdp.wait_js(s, "!!document.querySelector('input[type=file]') && "
                       "!document.body.innerText.includes('street.mp4')", 60, "the app to render again")
        root = cdp.call("DOM.getDocument", s)["root"]["nodeId"]
        node = cdp.call("DOM.querySelector", s, nodeId=root, selector="input[type=file]")["nodeId"]
        cdp.call("DOM.setFileInputFiles", s, nodeId=node, files=[str(videos["text"])])
        cdp.wait_js(s, "document.body.innerText.includes('notes.mp4')", 60, "the text file's upload")
        cdp.js(s, "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Score').click()")
        status_js = "(document.getElementById('status') || {}).innerText || ''"
        message = cdp.wait_js(s, f"(() => {{ const t = {status_js}; return t.includes('not a video') ? t : ''; }})()",
                              60, "the rejection message in the status area")
        time.sleep(3)
        assert cdp.js(s, status_js) == message and "Could not score" in message
        assert "/tmp" not in message and str(server["work"]) not in message
        assert not cdp.js(s, "[...document.querySelectorAll('*')].some(e => e.children.length === 0 "
                             "&& e.innerText && e.innerText.trim() === 'Error')"), "an error badge or toast"
        assert cdp.js(s, "document.body.innerText.split('not a video').length - 1") == 1
        error_shot = tmp_path / "vad-serve-rejected.png"
        error_shot.write_bytes(base64.b64decode(cdp.call("Page.captureScreenshot", s, format="png")["data"]))
    finally:
        cdp.proc.terminate()
        try:
            cdp.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cdp.proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
