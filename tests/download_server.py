"""A local HTTP server for the download tests: files, HTTP errors, cut connections, resumable ranges,
and an imitation of Google Drive's confirmation step. It listens on 127.0.0.1 only, on an
ephemeral port, answers a bounded number of requests and stops by itself after ``lifetime`` seconds.

``drive_hosts`` maps the Google Drive host names to path prefixes of this server; the tests route
requests for those hosts here (see ``test_download.py``), so nothing ever leaves the machine.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

DRIVE_HOSTS = {"drive.google.com": "drive", "drive.usercontent.google.com": "usercontent"}


MANET_ENV = ("MANET_CACHE_DIR", *(f"MANET_{what}_{name}" for what in ("URL", "SHA256")
                                 for name in ("PAPER_WEIGHTS", "BACKBONE", "DAVIS2017", "DAVIS2017_SCRIBBLES")))


def stay_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies off and the download settings of the environment cleared, so requests to 127.0.0.1
    go straight to the fixture server and the defaults are the code's."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", *MANET_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def route_to(fixture: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of ``requests`` (which gdown and pooch use) goes to ``fixture``: the Drive hosts
    under their prefixes, any other host than 127.0.0.1 refused before a socket is opened."""
    original = requests.adapters.HTTPAdapter.send

    def send(adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        parts = urlsplit(str(request.url))
        if parts.hostname in DRIVE_HOSTS:
            query = f"?{parts.query}" if parts.query else ""
            request.url = f"{fixture.url}/{DRIVE_HOSTS[parts.hostname]}{parts.path}{query}"
        elif parts.hostname != "127.0.0.1":
            raise requests.ConnectionError(f"tests never leave 127.0.0.1, refused {request.url}")
        return original(adapter, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)


@dataclass
class Route:
    """What one path answers.

    Attributes:
        cut_after: the first ``cuts`` full (non-range) responses stop after this many body bytes
            and drop the connection, although ``Content-Length`` announced the whole body.
        require_query: query parameters the request must carry (else 403), e.g. Drive's ``confirm``.
    """

    body: bytes
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    cuts: int = 1
    require_query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Logged:
    path: str
    range: str | None


class FixtureServer:
    """``routes`` by path (without query); ``log`` records every request in order."""

    def __init__(self, max_requests: int = 100, lifetime: float = 120.0) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Logged] = []
        self.max_requests = max_requests
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FixtureServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._timer.cancel()
            self._server.shutdown()
            self._server.server_close()

    def serve_drive_file(self, file_id: str, body: bytes, filename: str) -> None:
        """Imitate Drive: ``/uc?id=`` answers the "can't scan for viruses" page whose form leads to
        the usercontent host, which serves the file only with ``confirm`` set."""
        form = (f'<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
                f'<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="{file_id}">'
                '<input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">'
                '<input type="hidden" name="uuid" value="0f1e2d3c"></form>')
        page = ("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\n"
                f"<p>Google Drive can't scan this file for viruses.</p>\n{form}\n</body></html>\n")
        self.routes["/drive/uc"] = Route(page.encode(), content_type="text/html; charset=utf-8")
        self.routes["/usercontent/download"] = Route(
            body, headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            require_query={"id": file_id, "confirm": "t"})


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that closes early (gdown after reading headers before a resume) is expected


def _handler(fixture: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            fixture.log.append(Logged(self.path, self.headers.get("Range")))
            if len(fixture.log) > fixture.max_requests:
                self._send(503, b"too many requests for a test", "text/plain")
                threading.Thread(target=fixture.stop, daemon=True).start()
                return
            route = fixture.routes.get(parts.path)
            if route is None:
                self._send(404, b"<html><body>Not Found</body></html>", "text/html")
                return
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            if any(query.get(key) != value for key, value in route.require_query.items()):
                self._send(403, b"<html><body>Forbidden</body></html>", "text/html")
                return
            self._serve(route)

        def _serve(self, route: Route) -> None:
            body, start = route.body, 0
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            requested = self.headers.get("Range", "")
            if_range = self.headers.get("If-Range")
            if route.status == 200 and requested.startswith("bytes=") and if_range in (None, etag):
                start = int(requested.removeprefix("bytes=").split("-")[0])
            self.send_response(206 if start else route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if route.cut_after is not None and route.cuts > 0 and not start:
                route.cuts -= 1
                self.wfile.write(body[:route.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
