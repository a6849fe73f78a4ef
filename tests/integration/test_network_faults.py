"""Network faults against servers on 127.0.0.1: the fetch either completes correctly or fails
cleanly, with nothing partial left where a landed file would be.

Covered elsewhere (tests/integration/test_sources_http.py): 429 + Retry-After, 500 then
success, read timeout, truncated body, HTML page with 200. Here: connection reset, 503 bursts,
slow drip (stalling mid-body), redirect loop, and a self-signed TLS certificate that must be
refused, never bypassed.
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from territoires_industrie import http
from territoires_industrie.http import DownloadError, HttpClient, HttpConfig, HttpError, RetryBudgetExceeded

from .sources_live_server import zip_bytes

PAYLOAD = zip_bytes({"StockEtablissement_utf8.csv": b"siret,codeCommuneEtablissement\n" + b"55210055400016,25056\n" * 2000})


def client(**cfg) -> HttpClient:
    base = dict(urls=dict(http.DEFAULT_URLS), backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.05,
                max_retries=3, total_budget=20, connect_timeout=1, read_timeout=0.5, rate_limits={})
    base.update(cfg)
    return HttpClient(HttpConfig(**base), redact_logs=False)


def assert_nothing_partial(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if p.is_file()]
    assert left == [], f"partial files left behind: {left}"


class RawServer:
    """A tiny TCP server whose behaviour per connection is scripted (loopback only, bounded)."""

    def __init__(self, handlers):
        self.handlers = list(handlers)  # one callable(conn) per accepted connection; last one repeats
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            h = self.handlers[min(self.connections, len(self.handlers) - 1)]
            self.connections += 1
            try:
                conn.settimeout(2)
                conn.recv(65536)  # the request
                h(conn)
            except OSError:
                pass
            finally:
                try:
                    conn.close()
                except OSError:
                    pass

    def url(self, path="/f.zip"):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self._stop.set()
        self.thread.join(timeout=3)
        self.sock.close()


def reset(conn):
    """Close with SO_LINGER 0: the client sees a TCP RST (connection reset by peer)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def ok(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % len(PAYLOAD) + PAYLOAD)


def status(code: int):
    def h(conn):
        conn.sendall(b"HTTP/1.1 %d Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy" % code)
    return h


def drip_then_stall(conn):
    """Headers, half the body slowly, then silence longer than the read timeout."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % len(PAYLOAD))
    half = PAYLOAD[: len(PAYLOAD) // 2]
    for i in range(0, len(half), 512):
        conn.sendall(half[i:i + 512])
        time.sleep(0.01)
    time.sleep(1.5)  # > read_timeout (0.5 s): the client must give up on this attempt


def slow_but_steady(conn):
    """A slow drip that keeps every gap under the read timeout completes correctly."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % len(PAYLOAD))
    for i in range(0, len(PAYLOAD), 4096):
        conn.sendall(PAYLOAD[i:i + 4096])
        time.sleep(0.05)


@pytest.fixture()
def server_factory():
    servers = []

    def make(*handlers):
        s = RawServer(handlers)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_connection_resets_then_success(server_factory, tmp_path):
    srv = server_factory(reset, reset, ok)
    res = client().download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert res.path.read_bytes() == PAYLOAD
    assert srv.connections == 3


def test_connection_reset_every_time_fails_cleanly(server_factory, tmp_path):
    srv = server_factory(reset)
    with pytest.raises((DownloadError, RetryBudgetExceeded), match=r"gave up after 4 attempt.*ConnectionError"):
        client().download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert_nothing_partial(tmp_path / "in")


def test_503_burst_then_success(server_factory, tmp_path):
    srv = server_factory(status(503), status(503), status(502), ok)
    res = client(max_retries=4).download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert res.path.read_bytes() == PAYLOAD and srv.connections == 4


def test_503_burst_longer_than_the_budget_fails_cleanly(server_factory, tmp_path):
    srv = server_factory(status(503))
    with pytest.raises((DownloadError, RetryBudgetExceeded), match="503"):
        client().download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert_nothing_partial(tmp_path / "in")


def test_slow_drip_that_stalls_never_lands_a_partial_file(server_factory, tmp_path):
    srv = server_factory(drip_then_stall)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="f.zip"):
        client(max_retries=1).download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert time.monotonic() - t0 < 15
    assert_nothing_partial(tmp_path / "in")


def test_slow_steady_drip_completes_correctly(server_factory, tmp_path):
    srv = server_factory(slow_but_steady)
    res = client().download(srv.url(), tmp_path / "in" / "f.zip", expect="zip")
    assert res.path.read_bytes() == PAYLOAD


def test_redirect_loop_fails_with_a_clear_error(httpserver, tmp_path):
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": httpserver.url_for("/b")})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": httpserver.url_for("/a")})
    with pytest.raises(HttpError, match=r"redirect"):
        client().download(httpserver.url_for("/a"), tmp_path / "in" / "f.zip", expect="zip")
    assert_nothing_partial(tmp_path / "in")
    assert len(httpserver.log) <= 40  # bounded: requests stops after 30 redirects and we do not retry


@pytest.fixture()
def tls_server(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    out = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                          str(crt), "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True, timeout=60)
    if out.returncode != 0:
        pytest.skip(f"openssl could not make a self-signed certificate: {out.stderr[:200]!r}")

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/f.zip"
    srv.shutdown()
    srv.server_close()


def test_invalid_tls_certificate_is_refused_not_bypassed(tls_server, tmp_path):
    c = client()
    t0 = time.monotonic()
    with pytest.raises(HttpError, match=r"(?i)certificate"):
        c.download(tls_server, tmp_path / "in" / "f.zip", expect="zip")
    assert c.session.verify is not False
    assert c.requests_made == 1  # a certificate failure is not retried: it will not fix itself
    assert time.monotonic() - t0 < 10
    assert_nothing_partial(tmp_path / "in")


@pytest.mark.parametrize("body,ctype,expect", [
    (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "application/zip", "zip"),
    (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "text/csv", "csv"),
    (b"%PDF-1.7 not a zip at all" * 10, "application/octet-stream", "zip"),
])
def test_a_complete_response_of_the_wrong_kind_is_not_retried(httpserver, tmp_path, body, ctype, expect):
    """Issue 14 defect 8: an HTML page (or another format) where a zip/CSV is expected was retried
    with backoff (six times, about two minutes, then the same error). It is a format error: one
    request, an error naming the file and what was received, no Airflow retry (DataError)."""
    from territoires_industrie.errors import DataError

    httpserver.expect_request("/f").respond_with_data(body, content_type=ctype)
    c = client()
    with pytest.raises(DownloadError, match=rf"stock\.{expect}: expected (a )?{expect}") as info:
        c.download(httpserver.url_for("/f"), tmp_path / f"stock.{expect}", expect=expect, label=f"stock.{expect}")
    assert c.requests_made == 1, "a format error must not be retried"
    assert isinstance(info.value, DataError)
    assert_nothing_partial(tmp_path)
