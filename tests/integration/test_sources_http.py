"""The shared HTTP client against a local server (pytest-httpserver on 127.0.0.1): retries,
Retry-After, timeouts, credentials, rate limit, conditional and checked downloads."""

from __future__ import annotations

import hashlib
import logging
import time
import zipfile

import pytest
from territoires_industrie import http
from territoires_industrie.http import (
    CredentialError,
    DownloadError,
    HttpClient,
    HttpConfig,
    RateLimiter,
    RetryBudgetExceeded,
    UpstreamFormatError,
)
from werkzeug import Response

from .sources_live_server import zip_bytes

KEY = "SECRET-KEY-0123456789abcdef"


class Sleeps(list):
    def __call__(self, s):
        self.append(round(s, 6))


def make_client(httpserver, sleeps=None, **cfg) -> HttpClient:
    base = dict(urls={**http.DEFAULT_URLS, "insee_api": httpserver.url_for("/api-sirene/3.11")}, backoff_base=0.5,
                backoff_cap=60, retry_after_cap=60, max_retries=3, total_budget=600, connect_timeout=2,
                read_timeout=2, rate_limits={"insee_api": (1000, 60.0)})
    base.update(cfg)
    return HttpClient(HttpConfig(**base), sleep=sleeps if sleeps is not None else Sleeps(), redact_logs=False)


def test_json_success_sends_project_user_agent(httpserver):
    httpserver.expect_request("/x").respond_with_json({"a": 1})
    c = make_client(httpserver)
    status, data = c.get_json(httpserver.url_for("/x"))
    assert (status, data) == (200, {"a": 1})
    req, _ = httpserver.log[0]
    assert req.headers["User-Agent"].startswith("territoires-industrie-indicators/")
    assert req.headers["Accept"] == "application/json"


def test_429_honours_retry_after_seconds(httpserver):
    httpserver.expect_oneshot_request("/x").respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    httpserver.expect_request("/x").respond_with_json({"ok": True})
    sleeps = Sleeps()
    _, data = make_client(httpserver, sleeps).get_json(httpserver.url_for("/x"))
    assert data == {"ok": True}
    assert sleeps == [7.0]  # what the server asked, not the backoff (0.5)
    assert len(httpserver.log) == 2


def test_retry_after_http_date_is_capped(httpserver):
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    httpserver.expect_oneshot_request("/x").respond_with_data("", status=503, headers={"Retry-After": when})
    httpserver.expect_request("/x").respond_with_data("fine")
    sleeps = Sleeps()
    _, body, _ = make_client(httpserver, sleeps, retry_after_cap=30).get_bytes(httpserver.url_for("/x"))
    assert body == b"fine"
    assert sleeps == [30.0]  # one hour asked, capped at 30 s


def test_500_then_success_with_exponential_backoff(httpserver):
    httpserver.expect_oneshot_request("/x").respond_with_data("boom", status=500)
    httpserver.expect_oneshot_request("/x").respond_with_data("boom", status=502)
    httpserver.expect_request("/x").respond_with_json([1, 2])
    sleeps = Sleeps()
    _, data = make_client(httpserver, sleeps).get_json(httpserver.url_for("/x"))
    assert data == [1, 2]
    assert sleeps == [0.5, 1.0]  # base * 2**attempt


def test_read_timeout_is_retried(httpserver):
    state = {"n": 0}

    def slow_once(request):
        state["n"] += 1
        if state["n"] == 1:
            time.sleep(0.6)
        return Response("late but fine")

    httpserver.expect_request("/slow").respond_with_handler(slow_once)
    sleeps = Sleeps()

    def really_sleep(s):  # the test server is single-threaded: let the slow handler finish
        sleeps(s)
        time.sleep(s)

    _, body, _ = make_client(httpserver, really_sleep, read_timeout=0.2).get_bytes(httpserver.url_for("/slow"))
    assert body == b"late but fine"
    assert len(sleeps) == 1 and state["n"] == 2


def test_retries_exhausted_names_the_last_error(httpserver):
    httpserver.expect_request("/down").respond_with_data("", status=503)
    c = make_client(httpserver, max_retries=2)
    with pytest.raises(RetryBudgetExceeded, match=r"gave up after 3 attempt\(s\).*HTTP 503"):
        c.get_bytes(httpserver.url_for("/down"))
    assert len(httpserver.log) == 3


def test_total_time_budget_stops_retrying(httpserver):
    httpserver.expect_request("/down").respond_with_data("", status=429, headers={"Retry-After": "50"})
    sleeps = Sleeps()
    c = make_client(httpserver, sleeps, max_retries=10, total_budget=120)
    with pytest.raises(RetryBudgetExceeded, match="budget 120"):
        c.get_bytes(httpserver.url_for("/down"))
    assert sleeps == [50.0, 50.0]  # a third wait would exceed the 120 s budget


def test_401_names_the_credential_never_its_value(httpserver, caplog):
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/api-sirene/3.11/siret").respond_with_data('{"fault":"Invalid Credentials"}', status=401)
    c = make_client(httpserver)
    cred = http.insee_credential(KEY)
    with pytest.raises(CredentialError) as exc:
        c.get_bytes(httpserver.url_for("/api-sirene/3.11/siret"), credential=cred)
    msg = str(exc.value)
    assert "TI_INSEE_API_KEY" in msg and "insee_api" in msg and "portail-api.insee.fr" in msg
    assert "X-INSEE-Api-Key-Integration" in msg
    assert KEY not in msg and KEY not in repr(cred) and KEY not in str(cred)
    assert len(httpserver.log) == 1  # never retried
    assert httpserver.log[0][0].headers["X-INSEE-Api-Key-Integration"] == KEY  # sent in the header only
    assert KEY not in caplog.text


def test_403_without_credential_says_none_is_needed(httpserver):
    httpserver.expect_request("/files/x.zip").respond_with_data("Forbidden", status=403)
    with pytest.raises(CredentialError, match="needs no credential"):
        make_client(httpserver).get_bytes(httpserver.url_for("/files/x.zip"))


def test_missing_key_fails_before_any_request():
    with pytest.raises(CredentialError, match="TI_INSEE_API_KEY"):
        http.insee_credential(None)


def test_malformed_json_and_html_page_are_format_errors(httpserver):
    httpserver.expect_request("/bad").respond_with_data('{"header": {"total": 3', content_type="application/json")
    httpserver.expect_request("/html").respond_with_data("<!DOCTYPE html><html>maintenance</html>",
                                                         content_type="text/html")
    c = make_client(httpserver)
    with pytest.raises(UpstreamFormatError, match="malformed JSON"):
        c.get_json(httpserver.url_for("/bad"))
    with pytest.raises(UpstreamFormatError, match="HTML page"):
        c.get_json(httpserver.url_for("/html"))


def test_rate_limiter_keeps_30_requests_per_minute():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    lim = RateLimiter(30, 60.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        lim.acquire()
        now[0] += 0.5  # 30 calls in 15 s
    lim.acquire()  # the 31st must wait until the first call is 60 s old
    assert sleeps == [pytest.approx(45.0)]
    assert now[0] == pytest.approx(60.0)


def test_client_applies_the_insee_rate_limit(httpserver):
    httpserver.expect_request("/api-sirene/3.11/siret").respond_with_json({})
    now = [100.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    cfg = HttpConfig(urls={**http.DEFAULT_URLS, "insee_api": httpserver.url_for("/api-sirene/3.11")},
                     rate_limits={"insee_api": (2, 60.0)})
    c = HttpClient(cfg, sleep=sleep, clock=lambda: now[0], redact_logs=False)
    for _ in range(5):  # 2 at t=100; the 3rd waits to t=160; the 4th passes; the 5th waits to t=220
        c.get_json(httpserver.url_for("/api-sirene/3.11/siret"))
    assert sleeps == [60.0, 60.0]
    assert now[0] == 220.0


def test_secret_filter_redacts_log_records(caplog):
    caplog.set_level(logging.INFO)
    http.register_secret("another-secret-value-77")
    logging.getLogger("territoires_industrie.test").info("calling with key %s", "another-secret-value-77")
    assert "another-secret-value-77" not in caplog.text
    assert "calling with key ***" in caplog.text


# --- downloads ------------------------------------------------------------------------------------
def test_download_streams_checks_and_logs_progress(httpserver, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data = zip_bytes({"a.csv": b"x,y\n" + b"1,2\n" * 200_000})
    httpserver.expect_request("/f.zip").respond_with_data(data, headers={"ETag": '"v1"'})
    c = make_client(httpserver, progress_every=0.0, chunk_size=4096)
    res = c.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expect="zip", expected_size=len(data),
                     checksum=("sha1", hashlib.sha1(data).hexdigest()))
    assert res.bytes == len(data) and res.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "f.zip").read_bytes() == data
    assert res.headers["ETag"] == '"v1"'
    assert "ETA" in caplog.text and "MiB/s" in caplog.text and "100%" in caplog.text


def test_conditional_get_304_and_same_etag(httpserver, tmp_path):
    def handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(b"data", headers={"ETag": '"v1"'})

    httpserver.expect_request("/f.csv").respond_with_handler(handler)
    c = make_client(httpserver)
    res = c.download(httpserver.url_for("/f.csv"), tmp_path / "f.csv", conditional={"etag": '"v1"'})
    assert res.not_modified and res.status == 304 and not (tmp_path / "f.csv").exists()
    assert httpserver.log[0][0].headers["If-None-Match"] == '"v1"'
    # a server that ignores If-None-Match but sends the same ETag: body not read, not modified
    httpserver.clear()
    httpserver.expect_request("/g.csv").respond_with_data(b"data", headers={"ETag": '"v1"'})
    res = c.download(httpserver.url_for("/g.csv"), tmp_path / "g.csv", conditional={"etag": '"v1"'})
    assert res.not_modified and res.status == 200


def test_truncated_zip_is_retried_then_refused(httpserver, tmp_path):
    data = zip_bytes({"a.csv": b"x\n" * 50_000})
    httpserver.expect_request("/f.zip").respond_with_data(data[: len(data) // 2])
    c = make_client(httpserver, max_retries=1)
    with pytest.raises(DownloadError, match=r"f\.zip: not a valid zip.*truncated or corrupt.*after 2 attempt"):
        c.download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expect="zip")
    assert not (tmp_path / "f.zip").exists()
    assert len(httpserver.log) == 2


def test_truncated_then_complete_download_succeeds(httpserver, tmp_path):
    data = zip_bytes({"a.csv": b"x\n" * 50_000})
    httpserver.expect_oneshot_request("/f.zip").respond_with_data(data[:-100])
    httpserver.expect_request("/f.zip").respond_with_data(data)
    res = make_client(httpserver).download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expect="zip")
    assert res.attempts == 2 and zipfile.ZipFile(tmp_path / "f.zip").read("a.csv") == b"x\n" * 50_000


def test_short_body_against_content_length_never_survives(httpserver, tmp_path):
    def short(request):  # announces 5000 bytes, sends 9, closes the connection
        r = Response(b"only-part", direct_passthrough=True)
        r.headers["Content-Length"] = "5000"
        return r

    httpserver.expect_request("/short.csv").respond_with_handler(short)
    c = make_client(httpserver, max_retries=1)
    with pytest.raises(DownloadError, match=r"short\.csv: transfer interrupted .*IncompleteRead.*after 2 attempt"):
        c.download(httpserver.url_for("/short.csv"), tmp_path / "short.csv", expect="csv")
    assert not (tmp_path / "short.csv").exists()
    assert len(httpserver.log) == 2


def test_html_page_with_200_instead_of_a_zip_is_not_retried(httpserver, tmp_path):
    httpserver.expect_request("/f.zip").respond_with_data("<!doctype html><p>Service indisponible</p>",
                                                          content_type="text/html; charset=utf-8")
    with pytest.raises(DownloadError, match="expected a zip file, received an HTML page"):
        make_client(httpserver).download(httpserver.url_for("/f.zip"), tmp_path / "f.zip", expect="zip")
    assert len(httpserver.log) == 1 and not (tmp_path / "f.zip").exists()


def test_size_and_checksum_mismatch_against_published_metadata(httpserver, tmp_path):
    httpserver.expect_request("/f.csv").respond_with_data(b"a,b\n1,2\n")
    c = make_client(httpserver, max_retries=0)
    with pytest.raises(DownloadError, match="8 bytes received but the publisher announces 9 bytes"):
        c.download(httpserver.url_for("/f.csv"), tmp_path / "f.csv", expected_size=9)
    with pytest.raises(DownloadError, match="sha1 checksum mismatch"):
        c.download(httpserver.url_for("/f.csv"), tmp_path / "f.csv", checksum=("sha1", "0" * 40))
    assert not (tmp_path / "f.csv").exists()


def test_exists_probe_falls_back_to_get_when_head_is_refused(httpserver):
    httpserver.expect_request("/f.xlsx", method="HEAD").respond_with_data("", status=405)
    httpserver.expect_request("/f.xlsx", method="GET").respond_with_data(b"PK\x03\x04...")
    httpserver.expect_request("/g.xlsx", method="HEAD").respond_with_data("", status=404)
    c = make_client(httpserver)
    assert c.exists(httpserver.url_for("/f.xlsx")) is True
    assert c.exists(httpserver.url_for("/g.xlsx")) is False


def test_one_shared_client_per_configuration(monkeypatch):
    monkeypatch.setenv("TI_URL_MELODI", "http://127.0.0.1:9/melodi")
    a, b = http.client_from_env(), http.client_from_env()
    assert a is b and a.limiters["melodi"] is b.limiters["melodi"]  # one quota for the whole run
    monkeypatch.setenv("TI_URL_MELODI", "http://127.0.0.1:9/other")
    assert http.client_from_env() is not a
