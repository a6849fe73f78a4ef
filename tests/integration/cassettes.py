"""Replay of recorded real HTTP responses (VCR cassettes) through a local server.

``tests/fixtures/recorded/<source>/`` holds cassettes recorded against the live services by
public clients' test suites (provenance in ``tests/fixtures/recorded/PROVENANCE.md``). Both
layouts are read: Python ``vcrpy`` (``interactions``, ``status: {code}``) and R ``vcr``
(``http_interactions``, ``status: 200``). A recorded response is served with its recorded
status, content type and body, at the recorded path, under whatever base URL the test gives
the pipeline (``TI_URL_*``): the project's own HTTP client sends the request, and the test
asserts both the request it sent and what it parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


@dataclass(frozen=True)
class Interaction:
    method: str
    uri: str
    status: int
    headers: dict
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    @property
    def query(self) -> dict:
        return dict(parse_qsl(urlsplit(self.uri).query))

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def _header(headers: dict, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v[0] if isinstance(v, list) else v
    return None


def load(relpath: str) -> list[Interaction]:
    """Every interaction of the cassette ``tests/fixtures/recorded/<relpath>``."""
    doc = yaml.safe_load((RECORDED / relpath).read_text(encoding="utf-8"))
    out = []
    for it in doc.get("interactions") or doc.get("http_interactions") or []:
        req, resp = it["request"], it["response"]
        status = resp["status"]["code"] if isinstance(resp["status"], dict) else int(resp["status"])
        body = resp["body"]["string"] if isinstance(resp.get("body"), dict) else resp.get("body") or ""
        out.append(Interaction(req["method"].upper(), req["uri"], int(status), resp.get("headers") or {},
                               body.encode("utf-8") if isinstance(body, str) else bytes(body)))
    return out


def one(relpath: str, path_endswith: str, **query) -> Interaction:
    """The interaction of the cassette whose path ends with ``path_endswith`` (and query items)."""
    hits = [i for i in load(relpath) if i.path.endswith(path_endswith)
            and all(i.query.get(k) == v for k, v in query.items())]
    assert len(hits) == 1, f"{relpath}: {len(hits)} interactions match {path_endswith} {query}"
    return hits[0]


def respond(httpserver, path: str, it: Interaction, method: str = "GET", body: bytes | None = None) -> None:
    """Serve ``it`` (its status, content type and body, or ``body`` when given) at ``path``."""
    ctype = _header(it.headers, "Content-Type") or "application/json"
    httpserver.expect_request(path, method=method).respond_with_data(
        it.body if body is None else body, status=it.status, content_type=ctype)
