"""End to end, a new user's first minute: a stroke and Enter while the annotator is still preparing
the embeddings. The scribbled frame is embedded before the preparation's queue (the overlay does
not wait for the whole video), round 1 streams and commits, and no frame is embedded twice.

The encoder of the tiny model is slowed to 0.5 s per frame, so the preparation of the 20-frame
video takes about 10 s and the order of encoder calls shows who went first.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SLOW_ENCODER_NOTEBOOK = """import time, torch, manet
from manet_widget import Annotator
torch.manual_seed(0)
session = manet.Session(manet.load_model(weights=None, config=manet.ModelConfig.tiny()), {video!r})
encoder_calls = []
_encode = session.embeddings._encode
def slow_encode(frames):
    encoder_calls.append(list(frames))
    time.sleep(0.5 * len(frames))
    return _encode(frames)
session.embeddings._encode = slow_encode
annotator = Annotator(session)
annotator"""

FRAME = 15  # the preparation (frames in order) would reach it after about 7.5 s


def test_enter_while_preparing_embeds_the_scribbled_frame_first(jupyter_server: Any, new_page: Any,
                                                                lab: Any) -> None:
    harness = lab
    video = jupyter_server.root / "shapes.mp4"
    (jupyter_server.root / "first_minute.ipynb").write_text(
        harness.notebook_json(video, source=SLOW_ENCODER_NOTEBOOK.format(video=str(video))))
    notebook = harness.NotebookPage(new_page).open(
        jupyter_server.url("/lab/workspaces/first/tree/first_minute.ipynb"),  # its own workspace: one annotator
        ready="v.stats.framesReceived > 0 && v.get('status') === 'preparing'")
    notebook.view(f"v.setFrame({FRAME})")
    notebook.wait(f"v.frame === {FRAME} && v.hasFrame({FRAME})")
    x, y = harness.disc_centre(FRAME, 20)
    notebook.scribble([(x - 25, y - 5), (x, y + 5), (x + 25, y - 3)])
    calls_before = int(notebook.run_python("print(len(encoder_calls))"))
    if calls_before >= FRAME - 2:
        pytest.skip(f"the machine is too slow for this check: preparation reached frame {calls_before} first")
    new_page.keyboard.press("Enter")
    notebook.wait("v.stats.interactiveDrawnAt > 0", timeout=120_000)
    notebook.wait("v.get('round_index') === 1 && !v.masks.running", timeout=180_000)
    notebook.wait("v.get('status') === 'idle'", timeout=120_000)
    kernel = json.loads(notebook.run_python(
        "import json\nprint(json.dumps({'calls': encoder_calls, 'encoded': session.embeddings.encoded.tolist(),"
        " 'rounds': len(session.rounds), 'error': annotator.error}))"))
    assert kernel["error"] == "" and kernel["rounds"] == 1
    position = kernel["calls"].index([FRAME])
    assert position <= calls_before + 2, (
        f"the scribbled frame was embedded as call {position}, the preparation had made {calls_before} before Enter")
    assert kernel["encoded"] == [1] * 20, "every frame embedded exactly once"
    stats = notebook.view("v.stats")
    assert len(stats["pendingMaskTimes"]) == 20, "round 1 streamed every frame"
