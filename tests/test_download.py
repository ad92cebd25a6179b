"""``manet.download``: cached, checked, resumable downloads from a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import json
import socket
import zipfile
from pathlib import Path

import pytest
import torch
from download_fixtures import davis_zip, official_checkpoint, scribbles_zip
from download_server import FixtureServer, Route

from manet.download import (
    ChecksumError,
    ContentError,
    IncompleteDownloadError,
    LinkError,
    NetworkError,
    NotDownloadedError,
    download,
    resolve_data,
)
from manet.download.extract import extract_davis, layout_path

pytest.importorskip("pooch")
pytest.importorskip("gdown")


# Every request stays on this machine; `server` (tests/conftest.py) serves the fixtures on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("local_network_only")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve(monkeypatch: pytest.MonkeyPatch, server: FixtureServer, env_name: str, route: Route,
           sha256: str | None = None) -> None:
    path = f"/files/{env_name.lower()}"
    server.routes[path] = route
    monkeypatch.setenv(f"MANET_URL_{env_name}", server.url + path)
    monkeypatch.setenv(f"MANET_SHA256_{env_name}", sha256 or _sha256(route.body))


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_davis_download_extracts_the_layout_and_records_it(tmp_path: Path, server: FixtureServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, server, "DAVIS2017", Route(davis_zip(tmp_path / "d.zip").read_bytes()))
    _serve(monkeypatch, server, "DAVIS2017_SCRIBBLES", Route(scribbles_zip(tmp_path / "s.zip").read_bytes()))
    cache = tmp_path / "cache"

    folder = download("davis2017", cache)
    assert download("davis2017-scribbles", cache) == folder == cache / "davis2017"

    assert sorted(p.name for p in (folder / "JPEGImages").iterdir()) == ["bear", "dogs-jump"]
    assert (folder / "JPEGImages" / "dogs-jump" / "00003.jpg").is_file()
    assert (folder / "Annotations" / "dogs-jump" / "00000.png").is_file()
    assert (folder / "ImageSets" / "val.txt").read_text() == "dogs-jump\n"
    assert (folder / "ImageSets" / "2016" / "val.txt").is_file()
    assert (folder / "Scribbles" / "bear" / "002.json").is_file()
    assert (folder / "README.md").is_file()
    assert not (folder / "480p").exists() and not (folder / "DAVIS").exists()
    manifest = json.loads((cache / "manifest.json").read_text())["resources"]
    assert manifest["davis2017"]["sha256"] == _sha256(server.routes["/files/davis2017"].body)
    assert manifest["davis2017-scribbles"]["extracted"] == ["Scribbles"]
    # Archives and partial downloads are gone; only the extraction and the manifest stay.
    assert not any(cache.glob("archives/*")) and not any(cache.glob("partial/*"))
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]

    requests_before = len(server.log)
    assert download("davis2017", cache) == folder  # complete: not fetched again
    assert len(server.log) == requests_before

    source = resolve_data("davis2017", "val", cache=cache)
    assert source.root == folder and source.split_file == folder / "ImageSets" / "val.txt" and not source.note


def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path, server: FixtureServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "backbone.pth"
    torch.save({"weight": torch.randn(400_000, generator=torch.Generator().manual_seed(1))}, path)
    body = path.read_bytes()  # 1.6 MB: several of the transfer's chunks arrive before the cut
    _serve(monkeypatch, server, "BACKBONE", Route(body, cut_after=len(body) * 2 // 3))
    cache = tmp_path / "cache"

    with pytest.raises(IncompleteDownloadError, match="resume") as caught:
        download("backbone", cache, retries=0)
    assert "manet download backbone" in str(caught.value)
    kept = list((cache / "partial").iterdir())
    assert len(kept) == 1 and 0 < kept[0].stat().st_size < len(body)
    received = kept[0].stat().st_size
    assert not (cache / "weights" / "deeplabv3plus_coco.pth").exists()

    stored = download("backbone", cache, retries=0)
    assert [entry.range for entry in server.log if entry.range] == [f"bytes={received}-"]
    assert stored.read_bytes() == body
    assert not any((cache / "partial").iterdir())


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, server: FixtureServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    body = davis_zip(tmp_path / "d.zip").read_bytes()
    _serve(monkeypatch, server, "DAVIS2017", Route(body), sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as caught:
        download("davis2017", cache)
    message = str(caught.value)
    assert "0" * 64 in message and _sha256(body) in message and "rerun `manet download davis2017`" in message
    assert _files(cache) == []


@pytest.mark.parametrize(("route", "expected"), [
    (None, "HTTP 404"),
    (Route(b"<!DOCTYPE html>\n<html><body>This page has moved</body></html>", content_type="text/html"),
     "web page instead of"),
])
def test_moved_link_says_so_and_leaves_nothing(tmp_path: Path, server: FixtureServer, monkeypatch: pytest.MonkeyPatch,
                                               route: Route | None, expected: str) -> None:
    if route is None:
        monkeypatch.setenv("MANET_URL_DAVIS2017", server.url + "/no/such/file.zip")
    else:
        _serve(monkeypatch, server, "DAVIS2017", route, sha256="1" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(LinkError, match=expected) as caught:
        download("davis2017", cache)
    assert "MANET_URL_DAVIS2017" in str(caught.value) and "davischallenge.org" in str(caught.value)
    assert _files(cache) == []


def test_no_network_is_reported_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MANET_URL_DAVIS2017", f"http://127.0.0.1:{port}/DAVIS.zip")
    with pytest.raises(NetworkError, match="cannot reach 127.0.0.1.*internet connection"):
        download("davis2017", tmp_path / "cache", retries=0, timeout=5)
    assert _files(tmp_path / "cache") == []


def test_google_drive_confirmation_and_the_recorded_hash(tmp_path: Path, server: FixtureServer) -> None:
    """The published Drive link is followed through the confirmation page; the first download's
    sha256 is recorded, and a later download of different bytes is refused."""
    path = tmp_path / "backbone.pth"
    torch.save({"conv.weight": torch.ones(2, 3)}, path)
    server.serve_drive_file("15temSaxnKmGPvNxrKPN6W2lSsyGfCtTB", path.read_bytes(), "deeplab.pth")
    cache = tmp_path / "cache"

    stored = download("backbone", cache)
    assert stored.read_bytes() == path.read_bytes()
    assert [entry.path.split("?")[0] for entry in server.log] == ["/drive/uc", "/usercontent/download"]
    entry = json.loads((cache / "manifest.json").read_text())["resources"]["backbone"]
    assert entry["sha256"] == _sha256(path.read_bytes()) and "first download" in entry["sha256_source"]

    stored.unlink()
    server.serve_drive_file("15temSaxnKmGPvNxrKPN6W2lSsyGfCtTB", path.read_bytes() + b"changed", "deeplab.pth")
    with pytest.raises(ChecksumError, match="first download"):
        download("backbone", cache)
    assert not stored.exists()


def test_google_drive_refusing_the_file_says_why(tmp_path: Path, server: FixtureServer) -> None:
    page = ('<!DOCTYPE html><html><body><p class="uc-error-caption">Sorry, you can\'t view or download this file '
            'at this time.</p>\n<p class="uc-error-subcaption">Too many users have viewed or downloaded this file '
            'recently.</p>\n</body></html>\n')
    server.routes["/drive/uc"] = Route(page.encode(), content_type="text/html; charset=utf-8")
    with pytest.raises(LinkError, match="Too many users.*daily download quota") as caught:
        download("paper-weights", tmp_path / "cache")
    assert "load_model('paper', checkpoint=PATH)" in str(caught.value)
    assert _files(tmp_path / "cache") == []


def test_checkpoint_with_wrong_shapes_is_refused(tmp_path: Path, server: FixtureServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    body = official_checkpoint(tmp_path / "small.pth", full_size=False).read_bytes()
    server.routes["/manet.pth"] = Route(body)
    monkeypatch.setenv("MANET_URL_PAPER_WEIGHTS", server.url + "/manet.pth")
    cache = tmp_path / "cache"
    with pytest.raises(ContentError, match="wrong shapes") as caught:
        download("paper-weights", cache)
    assert "deleted" in str(caught.value)
    assert _files(cache) == []


@pytest.mark.slow
def test_paper_weights_download_then_load_model_from_the_cache(tmp_path: Path, server: FixtureServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import manet

    body = official_checkpoint(tmp_path / "full.pth", full_size=True).read_bytes()
    server.serve_drive_file("1JjYNha40rtEYKKKFtDv06myvpxagl5dW", body, "model.pth")
    cache = tmp_path / "cache"
    path = download("paper-weights", cache)
    entry = json.loads((cache / "manifest.json").read_text())["resources"]["paper-weights"]
    assert entry["sha256"] == _sha256(body) and entry["size"] == len(body)

    monkeypatch.setenv("MANET_CACHE_DIR", str(cache))
    model = manet.load_model("paper")
    assert model.config == manet.ModelConfig.paper()
    assert all(float(tensor.abs().max()) == 0 for name, tensor in model.state_dict().items()
               if name.endswith("weight"))  # the served zeros, not a random initialisation
    assert path == cache / "weights" / "manet_official.pth"


def test_load_model_paper_names_the_download_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import manet
    from manet.errors import CheckpointError

    monkeypatch.setenv("MANET_CACHE_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"`manet download paper-weights`"):
        manet.load_model("paper")
    assert list(tmp_path.iterdir()) == []  # looked, fetched nothing


def test_data_name_not_downloaded_names_the_commands(tmp_path: Path) -> None:
    with pytest.raises(NotDownloadedError, match="manet download davis2017 --dir .*manet download davis2017-scribbles"):
        resolve_data("davis2017", cache=tmp_path)
    (tmp_path / "folder").mkdir()
    assert resolve_data(tmp_path / "folder").root == tmp_path / "folder"


def test_layout_paths() -> None:
    assert layout_path(("JPEGImages", "480p", "bear", "00000.jpg")) == ("JPEGImages", "bear", "00000.jpg")
    assert layout_path(("Annotations", "Full-Resolution", "bear", "00000.png")) is None
    assert layout_path(("JPEGImages", "bear", "00000.jpg")) == ("JPEGImages", "bear", "00000.jpg")
    assert layout_path(("ImageSets", "2017", "val.txt")) == ("ImageSets", "val.txt")
    assert layout_path(("Scribbles", "bear", "001.json")) == ("Scribbles", "bear", "001.json")


def test_extraction_refuses_unsafe_paths_and_wrong_layouts(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as archive:
        archive.writestr("DAVIS/JPEGImages/480p/a/0.jpg", b"x")
        archive.writestr("../escape.txt", b"x")
    with pytest.raises(ContentError, match="unsafe path"):
        extract_davis(unsafe, tmp_path / "out", ("JPEGImages",), True)
    assert not (tmp_path / "escape.txt").exists()

    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("DAVIS/Videos/a/0.jpg", b"x")
    with pytest.raises(ContentError, match="no JPEGImages, Annotations"):
        extract_davis(wrong, tmp_path / "out", ("JPEGImages", "Annotations"), True)
    assert list((tmp_path / "out").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
