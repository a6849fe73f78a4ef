"""The one HTTP client of the project: every byte that comes from the network goes through here.

- one ``requests.Session`` with a User-Agent naming the project;
- timeouts on every request (connect, read);
- retries with exponential backoff on connection errors, timeouts and HTTP 429/500/502/503/504,
  honouring ``Retry-After`` (seconds or HTTP date) up to a cap, within a total-time budget;
- fail fast on 401/403 with a message naming the credential to configure (never its value);
- a client-side rate limiter per API (INSEE APIs: 30 requests/minute);
- conditional GET (``If-None-Match`` / ``If-Modified-Since``) and streamed, checked downloads:
  Content-Length, expected size, checksum, zip integrity (CRC of every member), HTML-instead-of-data
  detection; progress logged with bytes, rate and ETA;
- a logging filter that redacts registered secrets from every log record.

Base URLs default to the official endpoints and are overridable by environment variables, so
tests point them at a local replay server:

| variable | default |
|---|---|
| ``TI_URL_DATAGOUV`` | ``https://www.data.gouv.fr/api/1`` |
| ``TI_URL_INSEE_API`` | ``https://api.insee.fr/api-sirene/3.11`` |
| ``TI_URL_INSEE_FILES`` | ``https://www.insee.fr`` |
| ``TI_URL_BDM`` | ``https://bdm.insee.fr/series/sdmx`` |
| ``TI_URL_MELODI`` | ``https://api.insee.fr/melodi`` |
| ``TI_URL_URSSAF`` | ``https://open.urssaf.fr/api/explore/v2.1`` |
| ``TI_URL_GEOPF`` | ``https://data.geopf.fr/telechargement/download`` (IGN Géoplateforme downloads) |

Retry/timeout knobs: ``TI_HTTP_CONNECT_TIMEOUT`` (10 s), ``TI_HTTP_READ_TIMEOUT`` (120 s),
``TI_HTTP_MAX_RETRIES`` (6), ``TI_HTTP_BACKOFF_BASE`` (2 s), ``TI_HTTP_BACKOFF_CAP`` (120 s),
``TI_HTTP_RETRY_AFTER_CAP`` (300 s), ``TI_HTTP_BUDGET`` (1800 s of retrying per call),
``TI_HTTP_RATE_INSEE`` (``30/60``: requests per seconds for API Sirene, Melodi and BDM).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import threading
import time
import zipfile
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from .errors import DataError

log = logging.getLogger(__name__)

DEFAULT_URLS = {
    "datagouv": "https://www.data.gouv.fr/api/1",
    "insee_api": "https://api.insee.fr/api-sirene/3.11",
    "insee_files": "https://www.insee.fr",
    "bdm": "https://bdm.insee.fr/series/sdmx",
    "melodi": "https://api.insee.fr/melodi",
    "urssaf": "https://open.urssaf.fr/api/explore/v2.1",
    "geopf": "https://data.geopf.fr/telechargement/download",
}
URL_ENV = {name: f"TI_URL_{name.upper()}" for name in DEFAULT_URLS}
#: APIs whose calls go through a client-side rate limiter (same quota for each: INSEE public plan).
RATE_LIMITED = ("insee_api", "melodi", "bdm")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
HEADERS_OF_INTEREST = ("ETag", "Last-Modified", "Content-Length", "Content-Type", "Content-Disposition", "Date")
USER_AGENT = "territoires-industrie-indicators/0.1 (+ANCT/DGE data platform; python-requests)"


# --- errors ------------------------------------------------------------------------------------
class HttpError(RuntimeError):
    """An HTTP call failed for good (after retries when retrying made sense)."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(redact(message))
        self.status, self.url = status, url


class CredentialError(HttpError):
    """401/403: the credential is missing, invalid or not subscribed. Never retried."""


class RetryBudgetExceeded(HttpError):
    """Retries exhausted (count or total-time budget)."""


class DownloadError(HttpError):
    """A download is truncated, corrupt, of the wrong kind (HTML page) or does not match its metadata."""


class ContentFormatError(DataError, DownloadError):
    """A complete response of the wrong kind (an HTML page or another format where a zip, a CSV...
    is expected): downloading it again gives the same bytes, so it is never retried."""

    retryable = False


class UpstreamFormatError(DataError, ValueError):
    """The response is not in the documented format (malformed JSON, HTML error page with HTTP 200...)."""


# --- secrets and log redaction -----------------------------------------------------------------
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def redact(text: str) -> str:
    if not isinstance(text, str):
        return text
    for s in list(_SECRETS):
        if s and s in text:
            text = text.replace(s, "***")
    return text


class SecretRedactingFilter(logging.Filter):
    """Replaces every registered secret by ``***`` in the formatted message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging API
        if not _SECRETS:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - malformed record: leave it to logging
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = SecretRedactingFilter()
REDACTED_LOGGERS = ("territoires_industrie", "urllib3", "requests", "airflow.task")


def install_redaction() -> None:
    """Attach the redacting filter to the root handlers and to the loggers that could see a secret."""
    targets: list = [logging.getLogger(n) for n in REDACTED_LOGGERS]
    for name in ("",) + REDACTED_LOGGERS:
        targets.extend(logging.getLogger(name).handlers)
    for t in targets:
        if _FILTER not in t.filters:
            t.addFilter(_FILTER)


def register_secret(value: str | None, *, install: bool = True) -> None:
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)
        if install:
            install_redaction()


@dataclass(frozen=True)
class Credential:
    """A secret sent in a header. ``name`` says what to configure; the value never appears in repr/logs."""

    header: str
    value: str = field(repr=False)
    name: str = "credential"
    hint: str = ""

    def __str__(self) -> str:
        return f"Credential({self.name}, header {self.header})"


INSEE_KEY_HINT = (
    "set the environment variable TI_INSEE_API_KEY or the Airflow connection 'insee_api' (password field) "
    "to the key of an application subscribed to 'API Sirene' on https://portail-api.insee.fr/"
)


def insee_credential(key: str | None) -> Credential:
    if not key:
        raise CredentialError(f"API Sirene needs an INSEE API key and none is configured: {INSEE_KEY_HINT}")
    register_secret(key)
    return Credential("X-INSEE-Api-Key-Integration", key, "TI_INSEE_API_KEY", INSEE_KEY_HINT)


# --- configuration -----------------------------------------------------------------------------
def _rate(value: str | None, default: tuple[int, float]) -> tuple[int, float]:
    if not value:
        return default
    calls, _, period = value.partition("/")
    return int(calls), float(period or 60)


@dataclass
class HttpConfig:
    urls: dict = field(default_factory=lambda: dict(DEFAULT_URLS))
    user_agent: str = USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 2.0
    backoff_cap: float = 120.0
    retry_after_cap: float = 300.0
    total_budget: float = 1800.0
    rate_limits: dict = field(default_factory=lambda: {k: (30, 60.0) for k in RATE_LIMITED})
    progress_every: float = 10.0
    chunk_size: int = 1 << 20

    @classmethod
    def from_env(cls, env: dict | None = None, user_agent: str | None = None) -> "HttpConfig":
        from .config import env as setting

        urls = {k: (setting(URL_ENV[k], env) or v).rstrip("/") for k, v in DEFAULT_URLS.items()}
        rate = _rate(setting("TI_HTTP_RATE_INSEE", env), (30, 60.0))

        def num(name, default, typ=float):
            v = setting(name, env)
            return typ(v) if v is not None else default

        return cls(
            urls=urls,
            user_agent=user_agent or USER_AGENT,
            connect_timeout=num("TI_HTTP_CONNECT_TIMEOUT", 10.0),
            read_timeout=num("TI_HTTP_READ_TIMEOUT", 120.0),
            max_retries=num("TI_HTTP_MAX_RETRIES", 6, int),
            backoff_base=num("TI_HTTP_BACKOFF_BASE", 2.0),
            backoff_cap=num("TI_HTTP_BACKOFF_CAP", 120.0),
            retry_after_cap=num("TI_HTTP_RETRY_AFTER_CAP", 300.0),
            total_budget=num("TI_HTTP_BUDGET", 1800.0),
            rate_limits={k: rate for k in RATE_LIMITED},
            progress_every=num("TI_HTTP_PROGRESS_EVERY", 10.0),
        )

    def url(self, name: str, path: str = "") -> str:
        base = self.urls[name].rstrip("/")
        return f"{base}/{path.lstrip('/')}" if path else base


# --- rate limiting -----------------------------------------------------------------------------
class RateLimiter:
    """Sliding window: at most ``max_calls`` calls in any ``period`` seconds."""

    def __init__(self, max_calls: int, period: float, clock=time.monotonic, sleep=time.sleep, name: str = ""):
        self.max_calls, self.period, self.name = int(max_calls), float(period), name
        self._clock, self._sleep = clock, sleep
        self._calls: deque = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            while self._calls and now - self._calls[0] >= self.period:
                self._calls.popleft()
            waited = 0.0
            if len(self._calls) >= self.max_calls:
                waited = self.period - (now - self._calls[0])
                if waited > 0:
                    if waited >= 1:
                        log.info("rate limit %s (%d requests / %.0f s): waiting %.1f s", self.name, self.max_calls,
                                 self.period, waited)
                    self._sleep(waited)
                    self.waited += waited
                now = self._clock()
                while self._calls and now - self._calls[0] >= self.period:
                    self._calls.popleft()
            self._calls.append(now)
            return waited


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: an integer, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def display_url(url: str, limit: int = 160) -> str:
    """Host + path (+ query, truncated) for messages; secrets are redacted."""
    parts = urlsplit(url)
    text = f"{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return redact(text if len(text) <= limit else text[: limit - 1] + "…")


def looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@dataclass
class DownloadResult:
    path: Path | None
    status: int
    not_modified: bool = False
    bytes: int = 0
    sha256: str | None = None
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0
    attempts: int = 1


def verify_zip(path: Path, label: str | None = None) -> int:
    """Open the central directory and read every member to the end (CRC-32 checked by zipfile).

    Returns the number of members. Raises :class:`DownloadError` naming the file.
    """
    name = label or Path(path).name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if not infos:
                raise DownloadError(f"{name}: the zip archive is empty")
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{name}: not a valid zip archive ({exc}): truncated or corrupt download") from exc
    except (EOFError, zlib.error, OSError) as exc:
        raise DownloadError(f"{name}: zip member data unreadable ({exc}): truncated or corrupt download") from exc
    if bad is not None:
        raise DownloadError(f"{name}: member {bad!r} fails its CRC-32 check: corrupt download")
    return len(infos)


def verify_parquet(path: Path, label: str | None = None) -> None:
    name = label or Path(path).name
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if size < 12 or head != b"PAR1" or tail != b"PAR1":
        raise DownloadError(f"{name}: not a complete Parquet file (magic bytes missing): truncated or corrupt download")
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path).metadata  # noqa: B018 - reads the footer
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError
        raise DownloadError(f"{name}: unreadable Parquet footer ({exc})") from exc


def check_content(path: Path, expect: str | None, label: str | None = None) -> None:
    """Content checks by expected kind: zip/xlsx (every member's CRC), parquet (magic + footer),
    7z (signature; its index is read by the caller's validator), csv/json/xml/text (not an HTML
    page, not empty)."""
    name = label or Path(path).name
    size = Path(path).stat().st_size
    if size == 0:
        raise DownloadError(f"{name}: empty response body")
    with open(path, "rb") as f:
        head = f.read(512)
    if expect in ("zip", "xlsx"):
        if not head.startswith(b"PK\x03\x04"):
            kind = "an HTML page" if looks_like_html(head) else f"bytes {head[:16]!r}"
            raise ContentFormatError(f"{name}: expected a {expect} file, received {kind}")
        verify_zip(path, name)
    elif expect == "parquet":
        verify_parquet(path, name)
    elif expect == "7z":
        if not head.startswith(b"7z\xbc\xaf\x27\x1c"):
            kind = "an HTML page" if looks_like_html(head) else f"bytes {head[:16]!r}"
            raise ContentFormatError(f"{name}: expected a 7z archive, received {kind}")
    elif expect in ("csv", "json", "xml", "text") and looks_like_html(head):
        raise ContentFormatError(f"{name}: expected {expect}, received an HTML page: {head[:120]!r}")


# --- the client --------------------------------------------------------------------------------
class HttpClient:
    def __init__(self, config: HttpConfig | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, session: requests.Session | None = None,
                 redact_logs: bool = True):
        self.config = config or HttpConfig.from_env()
        self._sleep, self._clock = sleep, clock
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = self.config.user_agent
        self.limiters = {
            name: RateLimiter(calls, period, clock=clock, sleep=sleep, name=name)
            for name, (calls, period) in self.config.rate_limits.items()
        }
        self.redact_logs = redact_logs
        self.requests_made = 0
        self.retries_made = 0
        if redact_logs:
            install_redaction()

    # -- helpers --
    def url(self, name: str, path: str = "") -> str:
        return self.config.url(name, path)

    def _limiter_for(self, url: str) -> RateLimiter | None:
        for name, lim in self.limiters.items():
            base = self.config.urls.get(name)
            if base and url.startswith(base):
                return lim
        return None

    def _wait_for_retry(self, attempt: int, started: float, reason: str, url: str, retry_after: float | None,
                        method: str, waited: float = 0.0) -> float:
        """Sleep before the next attempt, or raise when the count or the time budget is spent.
        Elapsed time = wall time since the call started, or the time already waited if larger."""
        c = self.config
        if retry_after is not None:
            wait = min(retry_after, c.retry_after_cap)
            how = f"Retry-After {retry_after:g} s" + (f" capped to {wait:g} s" if wait < retry_after else "")
        else:
            wait = min(c.backoff_base * (2 ** attempt), c.backoff_cap)
            how = "exponential backoff"
        elapsed = max(self._clock() - started, waited)
        if attempt >= c.max_retries or elapsed + wait > c.total_budget:
            raise RetryBudgetExceeded(
                f"{method} {display_url(url)}: gave up after {attempt + 1} attempt(s) in {elapsed:.1f} s "
                f"(max {c.max_retries} retries, budget {c.total_budget:g} s); last error: {reason}",
                url=url,
            )
        log.warning("%s %s: %s, retry %d/%d in %.2f s (%s)", method, display_url(url), reason, attempt + 1,
                    c.max_retries, wait, how)
        self.retries_made += 1
        self._sleep(wait)
        return wait

    def _credential_error(self, resp: requests.Response, url: str, credential: Credential | None) -> CredentialError:
        status = resp.status_code
        what = "missing or invalid" if status == 401 else "refused (not subscribed to this API, or not allowed)"
        if credential is not None:
            msg = (f"HTTP {status} from {display_url(url)}: the credential {credential.name} (header "
                   f"{credential.header}) is {what}; {credential.hint}")
        else:
            msg = (f"HTTP {status} from {display_url(url)}: access refused although this endpoint needs no "
                   f"credential; check proxies/firewall or whether the endpoint now requires a key")
        resp.close()
        return CredentialError(msg, status=status, url=url)

    # -- core --
    def request(self, method: str, url: str, *, params=None, headers: dict | None = None,
                credential: Credential | None = None, stream: bool = False, allow_status: tuple = (),
                timeout: tuple | None = None) -> requests.Response:
        """One logical call with retries. Returns the response for 2xx/3xx and ``allow_status``;
        raises :class:`CredentialError` on 401/403, :class:`HttpError` on other 4xx and
        :class:`RetryBudgetExceeded` when retries run out."""
        c = self.config
        started = self._clock()
        attempt = 0
        waited = 0.0
        limiter = self._limiter_for(url)
        hdrs = dict(headers or {})
        if credential is not None:
            hdrs[credential.header] = credential.value
        while True:
            if limiter is not None:
                limiter.acquire()
            self.requests_made += 1
            try:
                resp = self.session.request(method, url, params=params, headers=hdrs, stream=stream,
                                            timeout=timeout or (c.connect_timeout, c.read_timeout))
            except requests.exceptions.SSLError as exc:
                # Never retried and never bypassed (no verify=False): a bad certificate will not fix
                # itself, and accepting it would let anyone in the middle feed us data.
                raise HttpError(f"TLS certificate verification failed for {method} {display_url(url)}: "
                                f"{type(exc).__name__} (certificate not trusted; not bypassed)", url=url) from None
            except requests.TooManyRedirects as exc:
                raise HttpError(f"redirect loop on {method} {display_url(url)}: {exc}", url=url) from None
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                waited += self._wait_for_retry(attempt, started, f"{type(exc).__name__}", url, None, method, waited)
                attempt += 1
                continue
            status = resp.status_code
            if status in allow_status:
                return resp
            if status in (401, 403):
                raise self._credential_error(resp, url, credential)
            if status in RETRY_STATUSES:
                ra = parse_retry_after(resp.headers.get("Retry-After"))
                resp.close()
                waited += self._wait_for_retry(attempt, started, f"HTTP {status}", url, ra, method, waited)
                attempt += 1
                continue
            if status >= 400:
                snippet = ""
                try:
                    snippet = resp.text[:200].replace("\n", " ")
                except Exception:  # pragma: no cover
                    pass
                resp.close()
                raise HttpError(f"HTTP {status} from {method} {display_url(url)}: {snippet}", status=status, url=url)
            return resp

    def get(self, url: str, **kw) -> requests.Response:
        return self.request("GET", url, **kw)

    def get_json(self, url: str, *, params=None, credential: Credential | None = None, allow_status: tuple = (),
                 label: str | None = None):
        """GET and decode JSON. Returns ``(status, data)`` for ``allow_status`` responses too."""
        resp = self.request("GET", url, params=params, credential=credential, allow_status=allow_status,
                            headers={"Accept": "application/json"})
        return resp.status_code, decode_json(resp.content, label or display_url(resp.url or url),
                                             resp.headers.get("Content-Type", ""))

    def get_bytes(self, url: str, *, params=None, headers=None, credential=None, allow_status: tuple = ()) -> tuple[int, bytes, dict]:
        resp = self.request("GET", url, params=params, headers=headers, credential=credential, allow_status=allow_status)
        return resp.status_code, resp.content, {h: resp.headers[h] for h in HEADERS_OF_INTEREST if h in resp.headers}

    def exists(self, url: str) -> bool:
        """HEAD probe (used to try expected file names); 404/410 -> False. A server refusing HEAD
        (405/501) is asked with a streamed GET whose body is not read."""
        resp = self.request("HEAD", url, allow_status=(404, 410, 405, 501))
        if resp.status_code in (405, 501):
            resp.close()
            resp = self.request("GET", url, stream=True, allow_status=(404, 410))
        ok = resp.status_code < 400
        resp.close()
        return ok

    def download(self, url: str, dest: Path, *, conditional: dict | None = None, expected_size: int | None = None,
                 checksum: tuple[str, str] | None = None, expect: str | None = None, label: str | None = None,
                 credential: Credential | None = None, params=None) -> DownloadResult:
        """Stream ``url`` into ``dest`` (a temporary path chosen by the caller) and check it.

        ``conditional``: ``{"etag": ..., "last_modified": ...}`` of the copy we already have; a 304,
        or a 200 carrying the same ETag, returns ``not_modified=True`` without reading the body.
        Truncated / corrupt / HTML responses are retried (within the budget) then raise
        :class:`DownloadError`; ``dest`` never survives a failure.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        label = label or dest.name
        cond = {k: v for k, v in (conditional or {}).items() if v}
        headers = {}
        if cond.get("etag"):
            headers["If-None-Match"] = cond["etag"]
        if cond.get("last_modified"):
            headers["If-Modified-Since"] = cond["last_modified"]
        started = self._clock()
        attempt = 0
        waited = 0.0
        before = self.requests_made
        while True:
            try:
                res = self._download_once(url, dest, headers, cond, expected_size, checksum, expect, label,
                                          credential, params, attempt + 1)
                res.attempts = self.requests_made - before  # HTTP requests made, retries included
                return res
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    DownloadError) as exc:
                dest.unlink(missing_ok=True)
                if isinstance(exc, DownloadError) and not getattr(exc, "retryable", True):
                    raise
                reason = str(exc) if isinstance(exc, DownloadError) else \
                    f"{label}: transfer interrupted ({type(exc).__name__}: {str(exc)[:160]})"
                try:
                    waited += self._wait_for_retry(attempt, started, reason, url, None, "GET", waited)
                except RetryBudgetExceeded as final:
                    raise DownloadError(f"{reason} (after {attempt + 1} attempt(s))", url=url) from final
                attempt += 1
            except BaseException:
                dest.unlink(missing_ok=True)
                raise

    def _download_once(self, url, dest, headers, cond, expected_size, checksum, expect, label, credential, params,
                       attempt) -> DownloadResult:
        c = self.config
        t0 = self._clock()
        resp = self.request("GET", url, params=params, headers=headers, credential=credential, stream=True,
                            allow_status=(304,))
        got = {h: resp.headers[h] for h in HEADERS_OF_INTEREST if h in resp.headers}
        if resp.status_code == 304:
            resp.close()
            log.info("%s: not modified upstream (HTTP 304), nothing downloaded", label)
            return DownloadResult(None, 304, True, headers=got, attempts=attempt)
        if cond.get("etag") and resp.headers.get("ETag") == cond["etag"]:
            resp.close()
            log.info("%s: same ETag as the landed copy (%s), body not downloaded", label, cond["etag"])
            return DownloadResult(None, resp.status_code, True, headers=got, attempts=attempt)
        ctype = resp.headers.get("Content-Type", "").lower()
        total = int(resp.headers["Content-Length"]) if resp.headers.get("Content-Length", "").isdigit() else None
        if expected_size is not None and total is not None and total != int(expected_size):
            log.warning("%s: Content-Length %d differs from the published size %d", label, total, expected_size)
        want_hash = hashlib.new(checksum[0]) if checksum else None
        h = hashlib.sha256()
        n = 0
        last_log = t0
        if expect not in (None, "html") and "text/html" in ctype:
            head = resp.raw.read(300) if resp.raw else b""
            resp.close()
            raise ContentFormatError(f"{label}: expected a {expect} file, received an HTML page (HTTP {resp.status_code}, "
                                     f"{ctype}): {head[:120]!r}", url=url)
        log.info("%s: downloading %s%s", label, display_url(url), f" ({_mib(total)})" if total else "")
        try:
            with open(dest, "wb") as out:
                for chunk in resp.iter_content(chunk_size=c.chunk_size):
                    if not chunk:
                        continue
                    out.write(chunk)
                    h.update(chunk)
                    if want_hash is not None:
                        want_hash.update(chunk)
                    n += len(chunk)
                    now = self._clock()
                    if now - last_log >= c.progress_every:
                        el = max(now - t0, 1e-9)
                        rate = n / el
                        if total:
                            eta = (total - n) / rate if rate > 0 else float("inf")
                            log.info("%s: %s of %s (%.0f%%) at %s/s, ETA %.0f s", label, _mib(n), _mib(total),
                                     100 * n / total, _mib(rate), eta)
                        else:
                            log.info("%s: %s at %s/s", label, _mib(n), _mib(rate))
                        last_log = now
        finally:
            resp.close()
        if total is not None and n != total:
            raise DownloadError(f"{label}: truncated download, {n} of {total} bytes (Content-Length)", url=url)
        if expected_size is not None and n != int(expected_size):
            raise DownloadError(f"{label}: {n} bytes received but the publisher announces {int(expected_size)} bytes",
                                url=url)
        if want_hash is not None and want_hash.hexdigest().lower() != checksum[1].lower():
            raise DownloadError(f"{label}: {checksum[0]} checksum mismatch (published {checksum[1]}, "
                                f"received {want_hash.hexdigest()})", url=url)
        check_content(dest, expect, label)
        el = max(self._clock() - t0, 1e-9)
        log.info("%s: %s received in %.1f s (%s/s), sha256 %s…", label, _mib(n), el, _mib(n / el), h.hexdigest()[:12])
        return DownloadResult(dest, resp.status_code, False, n, h.hexdigest(), got, el, attempt)


def decode_json(body: bytes, label: str, content_type: str = ""):
    if looks_like_html(body[:512]) or "text/html" in content_type.lower():
        raise UpstreamFormatError(f"{label}: expected JSON, received an HTML page: {body[:120]!r}")
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpstreamFormatError(f"{label}: malformed JSON ({exc}); first bytes {body[:80]!r}") from exc


_SHARED: dict[str, HttpClient] = {}
_SHARED_LOCK = threading.Lock()


def client_from_env(settings=None, env: dict | None = None, **kw) -> HttpClient:
    """The process-wide client for the current configuration: one session and one set of rate
    limiters shared by every source of a run (a new configuration gets its own client)."""
    ua = getattr(settings, "user_agent", None)
    config = HttpConfig.from_env(env, user_agent=f"{ua}; python-requests" if ua else None)
    if kw:
        return HttpClient(config, **kw)
    key = repr(config)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = HttpClient(config)
        return _SHARED[key]
