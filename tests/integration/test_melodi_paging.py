"""Issue 14 defect 2: Melodi paging against a replay that behaves like the recorded service
(``paging.next`` only when the request carries ``page=``; ``paging.count`` = observations in all).
The request sent is asserted, and a result cut short is refused instead of silently truncated."""

from __future__ import annotations

import json

import pytest
from werkzeug import Response

from . import sources_live_server as srv


def _obs(i: int) -> dict:
    return {"dimensions": {"GEO": f"2025-COM-{44000 + i:05d}", "TIME_PERIOD": "2022", "AGE": "_T"},
            "measures": {"OBS_VALUE_NIVEAU": {"value": float(i)}}}


def _handler(calls, total=5, size=2, honour_next=True, announce=None):
    def handle(request):
        args = request.args.to_dict()
        calls.append(args)
        page = int(args.get("page", 1))
        chunk = [_obs(i) for i in range((page - 1) * size, min(page * size, total))]
        more = page * size < total
        paging = {"count": announce if announce is not None else total, "isLast": not more}
        if more and "page" in args and honour_next:
            q = "&".join(f"{k}={v}" for k, v in args.items() if k != "page")
            paging["next"] = f"https://api.insee.fr/melodi/data/DS_RP_POPULATION_PRINC?{q}&page={page + 1}"
        return Response(json.dumps({"observations": chunk, "paging": paging}), 200, content_type="application/json")
    return handle


def test_page_one_is_sent_and_next_is_followed(httpserver, tmp_path, monkeypatch):
    from territoires_industrie.http import client_from_env
    from territoires_industrie.sources.melodi import fetch_pages

    srv.live_env(monkeypatch, httpserver, tmp_path)
    calls = []
    httpserver.expect_request("/melodi/data/DS_RP_POPULATION_PRINC").respond_with_handler(_handler(calls))
    from territoires_industrie.config import get_settings

    pages = fetch_pages(client_from_env(get_settings()), "DS_RP_POPULATION_PRINC", {"AGE": "_T"}, tmp_path / "p",
                        max_result=2)
    assert calls[0]["page"] == "1" and calls[0]["maxResult"] == "2" and calls[0]["totalCount"] == "true"
    assert [c["page"] for c in calls] == ["1", "2", "3"] and len(pages) == 3
    n = sum(len(json.loads(p.read_text())["observations"]) for p in pages)
    assert n == 5


def test_a_result_cut_short_is_refused(httpserver, tmp_path, monkeypatch):
    from territoires_industrie.config import get_settings
    from territoires_industrie.http import UpstreamFormatError, client_from_env
    from territoires_industrie.sources.melodi import fetch_pages

    srv.live_env(monkeypatch, httpserver, tmp_path)
    calls = []
    httpserver.expect_request("/melodi/data/DS_RP_POPULATION_PRINC").respond_with_handler(
        _handler(calls, honour_next=False))
    with pytest.raises(UpstreamFormatError, match=r"received 2 observations of the 5 announced"):
        fetch_pages(client_from_env(get_settings()), "DS_RP_POPULATION_PRINC", {"AGE": "_T"}, tmp_path / "p",
                    max_result=2)
