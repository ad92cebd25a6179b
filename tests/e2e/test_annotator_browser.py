"""End to end: the annotator in a real JupyterLab 4 and Notebook 7, in headless Chromium, on a real
video with the real session (tiny random model). Draws with the mouse, runs a round, cancels a
propagation, and checks the kernel, the session and the canvas pixels. Screenshots go to
``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from manet.inference.scribbles import CLICK_RADIUS_FRACTION

pytestmark = pytest.mark.e2e

STATE = ("import json, hashlib\n"
         "s = annotator.session\n"
         "print(json.dumps({'rounds': len(s.rounds), 'pending': s.pending is not None,"
         " 'masks_md5': hashlib.md5(annotator.masks.tobytes()).hexdigest(),"
         " 'session_md5': hashlib.md5(s.masks.tobytes()).hexdigest(),"
         " 'object_pixels': int((s.masks > 0).sum()), 'error': annotator.error}))")


def kernel_state(notebook: Any) -> dict[str, Any]:
    return json.loads(notebook.run_python(STATE))


def test_round_and_cancel_in_jupyterlab(jupyter_server: Any, open_notebook: Any, new_page: Any,
                                        artifacts: Path) -> None:
    notebook = open_notebook(jupyter_server.url("/lab/tree/annotate.ipynb"))
    page = new_page
    before = kernel_state(notebook)
    assert before["rounds"] == 0 and before["object_pixels"] == 0

    # Keys typed in the widget must not reach JupyterLab (command-mode "a"/"b" insert cells).
    cells = "window.jupyterapp.shell.currentWidget.content.widgets.length"
    count = page.evaluate(f"() => {cells}")
    notebook.view("v.ui.root.focus()")
    for key in ("a", "b", "1", "ArrowRight", "ArrowLeft"):
        page.keyboard.press(key)
    assert page.evaluate(f"() => {cells}") == count
    assert notebook.view("v.get('active_object')") == 1 and notebook.view("v.frame") == 0

    # Scribble across the red disc of frame 0 (centre (100, 135), radius 40) and press Enter.
    notebook.snapshot_canvas("beforeRound")
    drawn = [(75.0, 125.0), (100.0, 140.0), (125.0, 130.0)]
    notebook.scribble(drawn)
    assert notebook.view("v.prompts.get(0).length") == 1
    page.keyboard.press("Enter")
    notebook.wait("v.get('round_index') === 1 && v.get('status') === 'idle' && !v.masks.running", timeout=180_000)
    stats = notebook.view("v.stats")
    assert stats["interactiveDrawnAt"] > stats["runSentAt"] > 0
    assert len(stats["pendingMaskTimes"]) == 20

    # The kernel received the scribble in original-frame pixels, and the session has masks.
    scribble = json.loads(notebook.run_python(
        "a = annotator.session.rounds[0].annotation\n"
        "print(json.dumps({'frame': a.frame, 'ids': [x.object_id for x in a.scribbles],"
        " 'first': a.scribbles[0].points[0].tolist(), 'last': a.scribbles[0].points[-1].tolist(),"
        " 'radius': a.scribbles[0].radius}))"))
    assert scribble["frame"] == 0 and scribble["ids"] == [1]
    for got, want in ((scribble["first"], drawn[0]), (scribble["last"], drawn[-1])):
        assert abs(got[0] - want[0]) < 2.5 and abs(got[1] - want[1]) < 2.5, (got, want)
    after_round = kernel_state(notebook)
    assert after_round["rounds"] == 1 and after_round["object_pixels"] > 0 and after_round["error"] == ""
    assert after_round["masks_md5"] == after_round["session_md5"]
    page_wait_draw(notebook)
    assert notebook.changed_pixels("beforeRound") > 500  # the mask overlay (and no stroke) now
    root = page.locator(".manet-annotator")
    root.screenshot(path=str(artifacts / "jupyterlab_after_round.png"))

    # Second round on frame 10, cancelled while it streams: the first round's result stays.
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    notebook.wait("v.frame === 10 && v.hasFrame(10)")
    notebook.snapshot_canvas("beforeCancel")
    notebook.scribble([(180.0, 130.0), (220.0, 140.0)])
    # Press Cancel from inside the page as soon as the second streamed mask lands (a click from
    # Python could come too late on a fast machine, after the 20 frames are done).
    notebook.view("""(() => { const original = v.onMessage; window.roundEnd = null;
      v.onMessage = (msg, buffers) => {
        original.call(v, msg, buffers);
        if (msg.type === 'mask' && msg.pending && v.stats.pendingMaskTimes.length === 2) v.ui.cancel.click();
        if (msg.type === 'round_cancelled' || msg.type === 'round_finished') {
          window.roundEnd = msg.type; v.onMessage = original; }
      }; })()""")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.roundEnd !== null", timeout=120_000)
    assert page.evaluate("() => window.roundEnd") == "round_cancelled"
    notebook.wait("v.get('status') === 'idle' && !v.masks.running")
    assert notebook.view("v.stats.pendingMaskTimes.length") < 20
    after_cancel = kernel_state(notebook)
    assert after_cancel["rounds"] == 1 and not after_cancel["pending"]
    assert after_cancel["masks_md5"] == after_round["masks_md5"] == after_cancel["session_md5"]
    assert notebook.view("v.get('round_index')") == 1
    assert notebook.view("v.prompts.get(10).length") == 1  # the strokes stay for another try
    root.screenshot(path=str(artifacts / "jupyterlab_after_cancel.png"))

    # The session still works after the cancel: run the kept strokes to completion.
    notebook.view("v.run()")
    notebook.wait("v.get('round_index') === 2 && v.get('status') === 'idle' && !v.masks.running", timeout=180_000)
    assert kernel_state(notebook)["rounds"] == 2

    # Export from the side panel; a failing export shows its error in the banner.
    target = jupyter_server.root / "masks.npz"
    page.select_option(".manet-export select", "npz")
    page.fill(".manet-path", str(target))
    page.get_by_role("button", name="Export the masks of the last round").click()
    notebook.wait("v.ui.hint.textContent.startsWith('saved')", timeout=60_000)
    saved = f"import numpy as np; print(bool((np.load({str(target)!r})['masks'] == annotator.masks).all()))"
    assert notebook.run_python(saved).strip() == "True"
    page.select_option(".manet-export select", "png")
    page.fill(".manet-path", str(jupyter_server.root))
    page.get_by_role("button", name="Export the masks of the last round").click()
    notebook.wait("v.get('error') !== '' && !v.ui.errorBanner.hidden", timeout=60_000)
    assert page.locator(".manet-error").is_visible()
    root.screenshot(path=str(artifacts / "jupyterlab_error_banner.png"))
    page.get_by_role("button", name="Dismiss").click()
    notebook.wait("v.ui.errorBanner.hidden && v.get('error') === ''")
    notebook.view("v.set('map_overlay', 'global')")
    notebook.wait("!!v.mapCacheSize()", timeout=30_000)
    page_wait_draw(notebook)
    root.screenshot(path=str(artifacts / "jupyterlab_global_map.png"))
    notebook.view("v.set('map_overlay', 'none')")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    # JupyterLab marks the body once the dark theme's CSS is in; then one redraw picks up its colours.
    page.wait_for_function("() => document.body.dataset.jpThemeName === 'JupyterLab Dark'"
                           " && document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
    page_wait_draw(notebook)
    root.screenshot(path=str(artifacts / "jupyterlab_dark_theme.png"))
    errors = [line for line in new_page.console_log if line.startswith("pageerror")]
    assert not errors, errors


def test_renders_and_draws_in_notebook_7(jupyter_server: Any, open_notebook: Any, new_page: Any,
                                         artifacts: Path) -> None:
    notebook = open_notebook(jupyter_server.url("/notebooks/annotate_nb7.ipynb"))
    notebook.snapshot_canvas("blank")
    notebook.scribble([(330.0, 40.0), (390.0, 70.0)])
    assert notebook.view("v.prompts.get(0).length") == 1
    assert notebook.changed_pixels("blank") > 50
    count = new_page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
    new_page.keyboard.press("b")
    new_page.keyboard.press("a")
    assert new_page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length") == count
    new_page.locator(".manet-annotator").screenshot(path=str(artifacts / "notebook7_stroke.png"))


PAINTED = ("(() => { const ids = v.paint.ids(v.frame); let s = '';"
           " for (let i = 0; i < ids.length; i += 8192) s += String.fromCharCode(...ids.subarray(i, i + 8192));"
           " return btoa(s); })()")


def finish_round(notebook: Any, number: int) -> None:
    notebook.wait(f"v.get('round_index') === {number} && v.get('status') === 'idle' && !v.masks.running",
                  timeout=180_000)


def test_click_box_and_paint_rounds(jupyter_server: Any, open_notebook: Any, new_page: Any,
                                    artifacts: Path) -> None:
    notebook = open_notebook(jupyter_server.url("/lab/workspaces/tools/tree/tools.ipynb"))
    root = new_page.locator(".manet-annotator")
    radius = float(notebook.run_python("print(annotator.click_radius)"))
    assert radius == pytest.approx(CLICK_RADIUS_FRACTION * 270)

    # Round 1, click tool: a positive click on the red disc and a right click (background) beside it.
    notebook.press("k")
    assert notebook.view("v.get('tool')") == "click"
    notebook.snapshot_canvas("beforeClicks")
    notebook.click(100.0, 135.0)
    notebook.click(300.0, 220.0, button="right")
    assert new_page.locator(".lm-Menu").count() == 0  # JupyterLab's context menu stays closed
    assert notebook.view("v.prompts.get(0).map((c) => [c.objectId, c.kind])") == [[1, "click"], [0, "click"]]
    root.screenshot(path=str(artifacts / "tools_clicks.png"))
    notebook.press("?")
    root.screenshot(path=str(artifacts / "tools_help.png"))
    notebook.press("?", "Enter")
    finish_round(notebook, 1)
    clicks = json.loads(notebook.run_python(
        "import json\na = annotator.session.rounds[0].annotation\n"
        "print(json.dumps([[s.object_id, s.points.tolist(), s.radius] for s in a.scribbles] + [len(a.boxes)]))"))
    assert clicks[-1] == 0 and [c[0] for c in clicks[:-1]] == [1, 0]
    for (_, points, got_radius), want in zip(clicks[:-1], [(100.0, 135.0), (300.0, 220.0)]):
        assert len(points) == 1 and got_radius == pytest.approx(radius)
        assert abs(points[0][0] - want[0]) < 1.5 and abs(points[0][1] - want[1]) < 1.5, (points, want)
    after_clicks = kernel_state(notebook)
    assert after_clicks["rounds"] == 1 and after_clicks["object_pixels"] > 0 and after_clicks["error"] == ""
    page_wait_draw(notebook)
    assert notebook.changed_pixels("beforeClicks") > 500
    root.screenshot(path=str(artifacts / "tools_after_click_round.png"))

    # Round 2 on frame 5: a new object, boxed with Shift+drag around the green square.
    notebook.press(*["ArrowRight"] * 5)
    notebook.wait("v.frame === 5 && v.hasFrame(5)")
    new_page.get_by_role("button", name="Add an object").click()
    notebook.wait("v.get('active_object') === 2")
    notebook.snapshot_canvas("beforeBox")
    notebook.drag((320.0, 50.0), (410.0, 130.0), modifier="Shift")
    assert notebook.view("v.prompts.get(5).length") == 0
    box = notebook.view("v.prompts.boxes(5)")
    assert len(box) == 1 and box[0]["objectId"] == 2
    root.screenshot(path=str(artifacts / "tools_box_drawn.png"))
    notebook.press("Enter")
    finish_round(notebook, 2)
    boxes = json.loads(notebook.run_python(
        "a = annotator.session.rounds[1].annotation\n"
        "print(json.dumps([a.frame, len(a.scribbles)] + [[b.object_id, b.x0, b.y0, b.x1, b.y1] for b in a.boxes]))"))
    assert boxes[:2] == [5, 0] and len(boxes) == 3 and boxes[2][0] == 2
    for got, corner in zip(boxes[2][1:], (320.0, 50.0, 410.0, 130.0)):
        assert abs(got - corner) < 1.5, (boxes, corner)
    after_box = kernel_state(notebook)
    assert after_box["rounds"] == 2 and after_box["masks_md5"] != after_clicks["masks_md5"]
    # The box made object 2 and the round ran for it (how many pixels the random tiny model then
    # gives it is the model's business, not the tool's).
    assert json.loads(notebook.run_python("print(list(annotator.session.rounds[1].channels.ids))")) == [0, 1, 2]
    page_wait_draw(notebook)
    assert notebook.changed_pixels("beforeBox") > 500
    root.screenshot(path=str(artifacts / "tools_after_box_round.png"))

    # Round 3 on frame 10: paint object 2 in, erase part of it, undo the erase, erase again; Apply.
    notebook.press(*["ArrowRight"] * 5, "n", "2")
    notebook.wait("v.frame === 10 && v.hasFrame(10) && v.shownMask(10) !== undefined")
    notebook.snapshot_canvas("beforePaint")
    notebook.drag((150.0, 40.0), (280.0, 60.0))
    notebook.drag((150.0, 200.0), (150.0, 250.0))
    notebook.press("e")
    notebook.drag((200.0, 30.0), (200.0, 70.0))
    notebook.press("Control+z")
    notebook.drag((260.0, 30.0), (260.0, 70.0))
    assert notebook.view("v.paint.edited(10) && !v.ui.apply.hidden && !v.ui.apply.disabled")
    painted = notebook.view(PAINTED)
    assert notebook.view("v.paint.ids(10)[50 * 480 + 200]") == 2  # the undone erase
    assert notebook.view("v.paint.ids(10)[50 * 480 + 260]") != 2  # the kept erase
    page_wait_draw(notebook)
    assert notebook.changed_pixels("beforePaint") > 500
    root.screenshot(path=str(artifacts / "tools_painted.png"))
    new_page.get_by_role("button", name="Apply the painted mask").click()
    finish_round(notebook, 3)
    result = json.loads(notebook.run_python(
        "import base64, numpy as np\n"
        f"painted = np.frombuffer(base64.b64decode({painted!r}), np.uint8).reshape(270, 480)\n"
        "r = annotator.session.rounds[2]\n"
        "print(json.dumps({'frame': r.annotation.frame, 'has_mask': r.annotation.mask is not None,"
        " 'widget': bool((annotator.masks[10] == painted).all()),"
        " 'session': bool((annotator.session.masks[10] == painted).all()),"
        " 'object2': int((painted == 2).sum()), 'error': annotator.error}))"))
    assert result == {"frame": 10, "has_mask": True, "widget": True, "session": True,
                      "object2": result["object2"], "error": ""}
    assert result["object2"] > 1000
    assert not notebook.view("v.paint.has(10)")
    root.screenshot(path=str(artifacts / "tools_after_paint_round.png"))

    # Delete object 2, which rounds 2 and 3 hold: its masks go; Undo brings them back.
    with_both = kernel_state(notebook)
    version = notebook.view("v.get('mask_version')")
    new_page.locator('.manet-object[data-object-id="2"]').hover()  # the delete button shows on hover
    new_page.get_by_role("button", name="Delete object 2").click()
    notebook.wait(f"v.get('objects').length === 1 && v.get('mask_version') > {version} && v.get('status') === 'idle'")
    assert notebook.run_python("print([o.id for o in annotator.session.objects], int((annotator.masks == 2).sum()))"
                               ).split() == ["[1]", "0"]
    new_page.get_by_role("button", name="Undo the last round or object deletion").click()
    notebook.wait("v.get('objects').length === 2 && v.get('status') === 'idle'")
    assert kernel_state(notebook)["masks_md5"] == with_both["masks_md5"]

    # Round 4 on frame 13 over the range 12..15, set with Shift+drag on the timeline: frames outside keep their masks.
    notebook.press(*["ArrowRight"] * 3, "d", "1")
    notebook.wait("v.frame === 13 && v.hasFrame(13)")
    timeline = new_page.locator(".manet-annotator canvas.manet-timeline")
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    assert box is not None
    x_of = notebook.view(f"[12, 15].map((t) => 8 + ((t + 0.5) / 20) * ({box['width']} - 16))")
    new_page.keyboard.down("Shift")
    new_page.mouse.move(box["x"] + x_of[0], box["y"] + box["height"] / 2)
    new_page.mouse.down()
    new_page.mouse.move(box["x"] + x_of[1], box["y"] + box["height"] / 2, steps=4)
    new_page.mouse.up()
    new_page.keyboard.up("Shift")
    assert notebook.view("[v.get('range_start'), v.get('range_stop'), v.frame]") == [12, 15, 13]
    outside = "import hashlib\nm = annotator.masks\nprint(hashlib.md5(m[:12].tobytes() + m[16:].tobytes()).hexdigest())"
    before_range = notebook.run_python(outside)
    notebook.scribble([(150.0, 60.0), (200.0, 80.0)])
    notebook.press("Enter")
    finish_round(notebook, 4)
    assert notebook.view("v.stats.pendingMaskTimes.length") == 4  # frames 12..15 only
    assert notebook.run_python(outside) == before_range
    root.screenshot(path=str(artifacts / "tools_after_range_round.png"))
    errors = [line for line in new_page.console_log if line.startswith("pageerror")]
    assert not errors, errors


def page_wait_draw(notebook: Any) -> None:
    """Wait for a canvas draw after the last change (a draw counts once the canvas holds it)."""
    draws = notebook.view("(v.invalidate(), v.stats.draws)")
    notebook.wait(f"v.stats.draws > {draws}")
