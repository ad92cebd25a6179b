"""``manet download`` on the command line, and ``--data davis2017`` of ``manet eval`` / ``manet train``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from download_fixtures import davis_zip, scribbles_zip
from download_server import FixtureServer, Route

from manet.cli import main

pytest.importorskip("pooch")
pytest.importorskip("gdown")


# Every request stays on this machine; `server` (tests/conftest.py) serves the fixtures on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("local_network_only")


def _serve_davis(tmp_path: Path, server: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, body in (("DAVIS2017", davis_zip(tmp_path / "d.zip").read_bytes()),
                       ("DAVIS2017_SCRIBBLES", scribbles_zip(tmp_path / "s.zip").read_bytes())):
        server.routes[f"/{name}.zip"] = Route(body)
        monkeypatch.setenv(f"MANET_URL_{name}", f"{server.url}/{name}.zip")
        monkeypatch.setenv(f"MANET_SHA256_{name}", hashlib.sha256(body).hexdigest())


def test_download_then_eval_reads_the_extracted_folder(tmp_path: Path, server: FixtureServer,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _serve_davis(tmp_path, server, monkeypatch)
    cache = tmp_path / "cache"
    assert main(["download", "davis2017", "davis2017-scribbles", "--dir", str(cache), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"davis2017: {cache / 'davis2017'}" in out and f"MANET_CACHE_DIR={cache}" in out

    monkeypatch.setenv("MANET_CACHE_DIR", str(cache))
    report = tmp_path / "report.json"
    assert main(["eval", "--data", "davis2017", "--tiny-random", "--max-frames", "3", "--rounds", "2",
                 "--working-size", "0", "--no-progress", "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    text = json.dumps(data)
    assert "dogs-jump" in text and "bear" not in text  # ImageSets/val.txt selects the val split
    assert '"source": "file"' in text  # round 1 is the official scribble, not the simulated user's
    assert str(cache / "davis2017") in text

    assert main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert f"davis2017-scribbles  {cache / 'davis2017'}" in listing and "paper-weights        not downloaded" in listing


def test_train_data_davis2017_is_the_cached_folder_with_its_train_split(
        tmp_path: Path, server: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import manet.train.loop

    _serve_davis(tmp_path, server, monkeypatch)
    cache = tmp_path / "cache"
    assert main(["download", "davis2017", "--dir", str(cache), "--quiet"]) == 0
    monkeypatch.setenv("MANET_CACHE_DIR", str(cache))
    seen: list[tuple[object, object]] = []

    class Stop(Exception):
        pass

    def trainer(config: object, data_root: object, split: object, *args: object) -> None:
        seen.append((data_root, split))
        raise Stop

    monkeypatch.setattr(manet.train.loop, "Trainer", trainer)
    with pytest.raises(Stop):
        main(["train", "stage1", "--data", "davis2017", "--out", str(tmp_path / "run"), "--preset", "tiny"])
    assert seen == [(str(cache / "davis2017"), str(cache / "davis2017" / "ImageSets" / "train.txt"))]


def test_download_failure_exits_1_with_the_reason(tmp_path: Path, server: FixtureServer,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MANET_URL_DAVIS2017", server.url + "/moved.zip")
    assert main(["download", "davis2017", "--dir", str(tmp_path), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "HTTP 404" in error and "MANET_URL_DAVIS2017" in error


@pytest.mark.parametrize("command", [["eval", "--data", "davis2017", "--tiny-random"],
                                     ["train", "stage1", "--data", "davis2017", "--out", "run"]])
def test_data_davis2017_before_downloading_names_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              command: list[str]) -> None:
    monkeypatch.setenv("MANET_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "`manet download davis2017`" in error and "`manet download davis2017-scribbles`" in error
    assert not (tmp_path / "run").exists()


def test_unknown_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["download", "davis2016"])
    assert caught.value.code == 2 and "invalid choice" in capsys.readouterr().err
