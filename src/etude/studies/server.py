"""A localhost server for a run folder: the report and the regular files inside the folder, nothing else.

It answers GET and HEAD for files whose resolved path lies inside the run folder (links that
leave it are refused), lists no folders (``/`` redirects to ``report.html``), and answers only
requests whose Host header names the loopback (``127.0.0.1``, ``localhost``, ``[::1]``), which
keeps other web pages from reading it through DNS rebinding.
"""

from __future__ import annotations

import http.server
import mimetypes
import posixpath
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from etude.errors import BadInputError
from etude.studies.report import inside
from etude.validation import check_int

__all__ = ["LOOPBACK_HOSTS", "check_port", "make_server", "serve"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def check_port(port: object) -> int:
    """``port`` when it is an int in 1..65535, or 0 (the system picks a free one); else BadInputError."""
    return check_int("--port", port, 0, 65535)


def _host_name(header: str | None) -> str:
    """The host of a Host header without its port ('[::1]:8000' -> '[::1]')."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    server_version = "etude"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _file(self) -> Path | None:
        """The requested file, after the Host check; None when an error was sent."""
        if _host_name(self.headers.get("Host")) not in LOOPBACK_HOSTS:
            self.send_error(403, "this server answers only requests for the loopback (127.0.0.1, localhost)")
            return None
        rel = posixpath.normpath(unquote(urlsplit(self.path).path)).lstrip("/")
        if rel in ("", "."):
            self.send_response(302)
            self.send_header("Location", "/report.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if "\x00" in rel or rel.split("/")[0] == "..":
            self.send_error(404)
            return None
        path = inside(self.root, self.root / rel)
        if path is None or not path.is_file():  # outside the folder, missing, or a folder: no listings
            self.send_error(404)
            return None
        return path

    def _send(self, body: bool) -> None:
        path = self._file()
        if path is None:
            return
        try:
            handle = open(path, "rb")
        except OSError:
            self.send_error(404)
            return
        with handle:
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if body:
                shutil.copyfileobj(handle, self.wfile)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._send(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(body=False)


def make_server(run_dir: str | Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for the run folder bound to 127.0.0.1:port (0: a free port, see ``server_address``).

    :raises BadInputError: for a bad port, a missing folder, or a port that cannot be bound.
    """
    check_port(port)
    root = Path(run_dir).resolve()
    if not root.is_dir():
        raise BadInputError(f"run folder {str(run_dir)!r} does not exist")
    handler = type("RunFolderHandler", (_Handler,), {"root": root})
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise BadInputError(f"cannot serve on port {port}: {exc.strerror or exc}") from exc


def serve(
    run_dir: str | Path, port: int = 8000, block: bool = True, server: http.server.ThreadingHTTPServer | None = None
) -> http.server.ThreadingHTTPServer:
    """Serve the run folder on http://127.0.0.1:port/report.html; with block=False run in a thread."""
    server = server or make_server(run_dir, port)
    if block:
        try:
            server.serve_forever()
        finally:
            server.server_close()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
