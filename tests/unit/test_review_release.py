"""Candidacy review against a real (small, hand-made) release published in a temporary SQLite
warehouse: numbers worked out by hand (see review_world.py), perimeter checks, flags, the
three outputs, nothing published ever touched, SQL injection treated as data."""

from __future__ import annotations

import csv
import json
import math

import pandas as pd
import pytest
import sqlalchemy as sa
from territoires_industrie import warehouse
from territoires_industrie.indicators import groups
from territoires_industrie.review import (
    CandidacyRejected,
    ReviewInputsError,
    from_args,
    load_group_inputs_from_warehouse,
    load_review_context,
    review_candidacy,
    run_review,
)
from territoires_industrie.review.review import assess

from .review_world import (
    ANNEMASSE,
    BEAUNE,
    BESANCON,
    BUGEY,
    CLUSES,
    DIJON,
    EPCI,
    FAUCIGNY,
    PERIODS,
    PLAINE,
    RELEASE,
    publish_world,
    write_geometry,
)

NNBSP = "\u202f"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    data = tmp / "data"
    data.mkdir()
    url = f"sqlite:///{data}/warehouse.db"
    eng = warehouse.get_engine(url)
    res = publish_world(eng, write_geometry(tmp / "geo"))
    ctx = load_review_context(eng)
    yield {"engine": eng, "ctx": ctx, "res": res, "data": data, "url": url, "tmp": tmp}
    eng.dispose()


def _ind(doc, ind_id):
    return next(r for r in doc["indicators"] if r["indicator_id"] == ind_id)


def _dump(engine) -> dict:
    with engine.connect() as c:
        names = sa.inspect(engine).get_table_names()
        return {t: pd.read_sql(sa.text(f'SELECT * FROM "{t}"'), c).to_csv(index=False) for t in sorted(names)}


def test_dijon_beaune_numbers_worked_out_by_hand(world):
    doc = assess(from_args("Dijon-Beaune", epci=f"{DIJON},{BEAUNE}"), world["ctx"])
    assert [m["epci"] for m in doc["perimeter"]["members"]] == [DIJON, BEAUNE]
    # industrial jobs: 900 + 600; five years earlier 1 050 + 700
    assert _ind(doc, "jobs_ind")["value"] == 1500.0
    a1 = _ind(doc, "a1_ind_jobs_decline")
    assert a1["value"] == pytest.approx(100 * 250 / 1750) and (a1["numerator"], a1["denominator"]) == (-250.0, 1750.0)
    assert _ind(doc, "jobs_total")["value"] == 6500.0
    assert _ind(doc, "ind_share")["value"] == pytest.approx(100 * 1500 / 6500)
    # unemployment = sum of estimated unemployed / sum of active people: (480 + 180) / 9 000, not the mean of 8 % and 6 %
    u = _ind(doc, "unemployment_rate")
    assert (u["numerator"], u["denominator"]) == (pytest.approx(660.0), 9000.0)
    assert u["value"] == pytest.approx(100 * 660 / 9000) and u["value"] != pytest.approx(7.0)
    assert _ind(doc, "c1_unemployment_rate")["value"] == pytest.approx(100 * 660 / 9000)  # census ratio 1 by design
    assert _ind(doc, "c3_unemployment_change_2y")["value"] == pytest.approx(100 * 60 / 9000)
    assert _ind(doc, "c2_non_employment_25_54")["value"] == pytest.approx(100 * 1600 / 7000)
    assert _ind(doc, "d1_population_decline")["value"] == pytest.approx(4.0)
    assert _ind(doc, "d2_employment_decline")["value"] == pytest.approx(100 * 500 / 9500)
    b1 = _ind(doc, "b1_net_closure_rate")
    assert b1["value"] == pytest.approx(12.5) and (b1["numerator"], b1["denominator"]) == (2.0, 16.0) and b1["reliable"]
    assert _ind(doc, "population")["value"] == 24000.0 and doc["summary"]["population"] == 24000.0
    # one establishment of 20+ employees in the group: B2 is secret (frequency rule) and said so
    assert _ind(doc, "b2_large_estab_loss")["secret_status"] == "A" and _ind(doc, "b2_large_estab_loss")["value"] is None
    assert any("20 salariés ou plus" in n and "secret" in n for n in doc["data_quality"])
    # perimeter: main zone d'emploi Dijon holds 15 000 of 24 000 people
    ch = doc["perimeter"]["checks"]
    assert (ch["n_epci"], ch["n_communes"], ch["main_ze"]) == (2, 4, "2711") and ch["main_ze_share"] == 0.625
    assert ch["ze_coherent"] and ch["epci_cap_ok"] and ch["contiguity"] == {
        "checked": True, "contiguous": True, "components": [[BEAUNE, DIJON]], "source": "epci_fixture.geojson"}
    over = {o["ti_id"]: o for o in ch["overlaps"]}
    assert over["ti-2701"]["share_of_candidacy"] == 0.625 and over["ti-2701"]["phase"] == "2023-2027"
    assert over["TI1-0042"]["share_of_candidacy"] == pytest.approx(19000 / 24000)  # Beaune + Ahuy
    assert over["TI1-0042"]["share_of_ti"] == 1.0 and not over["TI1-0042"]["identical"]
    assert [o["ti_id"] for o in ch["overlaps"]] == ["ti-2701", "TI1-0042"]  # current programme first
    # vintages stamped
    assert doc["release"]["release_id"] == RELEASE and doc["release"]["synthetic"] is True
    assert doc["release"]["source_vintages"]["sirene_stock"] == "2026-11-01"
    assert _ind(doc, "a1_ind_jobs_decline")["period"] == f"{PERIODS.t0}-{PERIODS.t1}"


def test_group_is_the_same_from_the_warehouse_as_from_memory(world):
    """Restricted inputs round-trip exactly: compute_group on the published release equals
    compute_group on the in-memory result of the indicators computation."""
    res = world["res"]
    comp = res.composite
    mem = groups.GroupInputs(counts=res.counts, territories=world["ctx"].territories, models=res.models,
                             national=res.national, epci_composite=comp[comp["reference_set"] == "epci"],
                             release_id=RELEASE)
    wh = load_group_inputs_from_warehouse(world["engine"], RELEASE)
    a = groups.compute_group([DIJON, BEAUNE, PLAINE], mem)
    b = groups.compute_group([DIJON, BEAUNE, PLAINE], wh)
    pd.testing.assert_frame_equal(a.indicators, b.indicators)
    pd.testing.assert_frame_equal(a.composite, b.composite)
    assert a.summary == b.summary


def test_batch_group_computation_equals_compute_group(world):
    """The vectorised twin used by batches gives exactly compute_group's results, masked
    members included (Bugey A, and Dijon + Bugey masked as a group)."""
    from territoires_industrie.review.groups_batch import compute_groups

    inputs = world["ctx"].inputs
    cases = [[DIJON, BEAUNE], [DIJON, BUGEY], [BUGEY, CLUSES], [BUGEY], [DIJON], [ANNEMASSE, BUGEY],
             sorted(EPCI), [BEAUNE, "999999999", DIJON], [DIJON, FAUCIGNY]]
    many, vals = compute_groups(cases, inputs, labels=[f"g{i}" for i in range(len(cases))])
    assert len(vals) == len(cases)
    for i, (codes, got) in enumerate(zip(cases, many)):
        one = groups.compute_group(codes, inputs, label=f"g{i}")
        assert (got.members, got.unknown_codes, got.region) == (one.members, one.unknown_codes, one.region)
        pd.testing.assert_frame_equal(got.indicators, one.indicators)
        pd.testing.assert_frame_equal(got.composite, one.composite)
        assert got.summary == one.summary
    assert {r["secret_status"] for r in many[1].indicators.to_dict("records") if r["indicator_id"] == "jobs_ind"} == {"D"}


def test_composite_flags_and_uncertainty_are_consistent(world):
    ctx = world["ctx"]
    doc = assess(from_args("Dijon-Beaune", epci=f"{DIJON},{BEAUNE}"), ctx)
    comp = {c["reference_set"]: c for c in doc["composite"]}
    assert set(comp) == {"ti_2023_2027", "ze", "epci"}
    for s, c in comp.items():
        mc = c["mc"]
        assert c["n_reference"] == {"ti_2023_2027": 5, "ze": 9, "epci": 12}[s] == mc["n_reference"]
        assert 1 <= mc["rank_p05"] <= mc["rank_median"] <= mc["rank_p95"] <= c["n_reference"] + 1
        assert 0.0 <= mc["p_top10"] <= mc["p_top20"] <= 1.0
        assert mc["top20_rank"] == math.ceil(0.2 * c["n_reference"])
        # the domain score is the exponential transform of the domain percentile
        for d in "ABCD":
            r = c["domain_pct"][d] / 100
            assert c[f"domain_{d.lower()}"] == pytest.approx(-23 * math.log(1 - r * (1 - math.exp(-100 / 23))))
    f = doc["flags"]
    # gate: LQ >= 1 and >= 500 industrial jobs (1 500 here)
    assert f["gate_industrial"]["value"] is (_ind(doc, "ind_lq")["value"] >= 1.0)
    assert f["gate_industrial"]["threshold"] == "LQ ≥ 1 et ≥ 500 emplois industriels"
    for s in ("ti_2023_2027", "ze"):
        c, d = comp[s], f["in_difficulty"]["by_set"][s]
        n_dom = sum(c["domain_pct"][k] >= 80 for k in "ABCD")
        assert d["domains_ge_threshold"] == n_dom
        assert d["met"] == ((c["percentile_national"] >= 80 or c["percentile_regional"] >= 80) and n_dom >= 2)
        assert f["robustly_in_difficulty"]["by_set"][s]["p_top20"] == c["mc"]["p_top20"]
        assert f["far_from_employment"]["by_set"][s]["met"] == (c["domain_pct"]["C"] >= 80)
    assert f["in_difficulty"]["value"] == any(v["met"] for v in f["in_difficulty"]["by_set"].values())
    # within the candidacy: extent = population share of members in the national top 20 % of EPCI
    epci = ctx.composite[ctx.composite["reference_set"] == "epci"].set_index("territory_id")
    pops = {DIJON: 15000.0, BEAUNE: 9000.0}
    top = sum(p for e, p in pops.items() if epci.at[e, "percentile_national"] > 80)
    assert doc["within"]["extent_top20_population_share"] == pytest.approx(top / 24000)
    scores = epci.loc[[DIJON, BEAUNE], "score"]
    assert doc["within"]["dispersion_epci_score"] == pytest.approx(scores.max() - scores.min())
    assert doc["within"]["most_difficult_member"]["epci"] == scores.idxmax()
    # same candidacy, same release: same interval (fixed seeds)
    again = assess(from_args("Dijon-Beaune", epci=f"{BEAUNE},{DIJON}"), ctx)
    assert again["composite"] == doc["composite"]


def test_perimeter_problems_named_with_suggestions(world):
    ctx = world["ctx"]
    doc = assess(from_args("Saisie", epci=f"21003,{DIJON},200000173,243500139,ti-2701,{DIJON}"), ctx)
    assert [m["epci"] for m in doc["perimeter"]["members"]] == [DIJON]
    pb = {p["code"]: p for p in doc["problems"]}
    assert pb["commune_as_epci"]["suggestion"] == DIJON
    assert pb["commune_as_epci"]["message"].startswith("« 21003 » est un code commune (Ahuy), pas un SIREN d'EPCI : "
                                                       f"son EPCI est {DIJON} (Dijon Métropole)")
    unknown = [p for p in doc["problems"] if p["code"] == "unknown_epci"]
    assert [p["value"] for p in unknown] == ["200000173", "243500139"]
    assert "clé de contrôle fausse" in unknown[0]["message"] and "COG 2023 (release 2026-11)" in unknown[1]["message"]
    assert pb["ti_as_epci"]["message"].startswith("« ti-2701 » est un identifiant de Territoire d'industrie")
    assert pb["duplicate_code"]["level"] == "warning"
    assert doc["flags"]["epci_cap"]["value"] and doc["perimeter"]["checks"]["single_epci"]


def test_communes_ti_ids_and_merged_communes(world):
    ctx = world["ctx"]
    doc = assess(from_args("Communes", communes="21003,21999"), ctx)
    assert [m["epci"] for m in doc["perimeter"]["members"]] == [DIJON]
    pb = {p["code"]: p for p in doc["problems"]}
    assert pb["unknown_commune"]["suggestion"] == "21105"  # merged commune: its current code, from the passage table
    assert "code actuel 21105 (Bressey-sur-Tille), EPCI 242100410 (Dijon Métropole)" in pb["unknown_commune"]["message"]
    assert pb["partial_epci"]["message"].startswith("EPCI 242100410 (Dijon Métropole) : 1 commune(s) données sur 2")
    doc = assess(from_args("Dijon-Plaine", ti="ti-2701"), ctx)
    assert [m["epci"] for m in doc["perimeter"]["members"]] == [DIJON, PLAINE]
    (same,) = [o for o in doc["perimeter"]["checks"]["overlaps"] if o["ti_id"] == "ti-2701"]
    assert same["identical"] and same["share_of_candidacy"] == 1.0
    pub = {p["reference_set"]: p for p in doc["published_ti"]}
    assert pub["ti_2023_2027"]["territory_id"] == "ti-2701" and pub["ti_2023_2027"]["n_reference"] == 5
    with pytest.raises(CandidacyRejected, match="aucun EPCI de la candidature"):
        assess(from_args("Inconnu", ti="ti-9999"), ctx)


def test_incoherent_and_non_contiguous_perimeters_are_flagged(world):
    ctx = world["ctx"]
    # Besançon's two communes: 7 904 + 8 517 inhabitants (review_world._filler, j = 8, 9)
    doc = assess(from_args("Trois bassins", epci=f"{DIJON},{BEAUNE},{BESANCON}"), ctx)
    ch = doc["perimeter"]["checks"]
    assert ch["population"] == 24000 + 7904 + 8517
    assert ch["main_ze"] == "2706" and ch["main_ze_share"] == pytest.approx(16421 / 40421)
    assert doc["flags"]["ze_coherence"]["value"] is False
    doc = assess(from_args("Loin", epci=f"{DIJON},{FAUCIGNY}"), ctx)
    assert doc["flags"]["contiguity"]["value"] is False
    assert doc["perimeter"]["checks"]["contiguity"]["components"] == [[DIJON], [FAUCIGNY]]


def test_secret_member_masks_the_group_and_is_never_revealed(world, tmp_path):
    """Bugey's industrial jobs are masked in the release (2 establishments: frequency rule):
    Dijon + Bugey would reveal them by subtraction, so the group's cell is masked (D)."""
    ctx = world["ctx"]
    iv = ctx.epci_values.set_index(["territory_id", "indicator_id"])
    assert iv.at[(BUGEY, "jobs_ind"), "secret_status"] != "V" and iv.at[(DIJON, "jobs_ind"), "secret_status"] == "V"
    res = review_candidacy(from_args("Dijon-Bugey", epci=f"{DIJON},{BUGEY}"), ctx, out_root=tmp_path)
    doc = res.document
    jobs = _ind(doc, "jobs_ind")
    assert jobs["secret_status"] == "D" and jobs["value"] is None and jobs["numerator"] is None
    hidden = world["res"].counts.set_index(["level", "territory_id"]).loc[("epci", BUGEY), "jobs_ind_t1"]
    group_total = 900 + hidden
    html = open(res.paths["html"], encoding="utf-8").read()
    assert f"{int(group_total):,}".replace(",", NNBSP) not in html and "secret D" in html
    row = next(csv.DictReader(open(res.paths["csv"], encoding="utf-8")))
    assert row["jobs_ind"] == "" and row["a1_ind_jobs_decline"] == ""
    assert any("1 EPCI membre(s) sur 2 ont leurs emplois industriels couverts par le secret" in n
               for n in doc["data_quality"])


def test_outputs_written_atomically_and_never_elsewhere(world, tmp_path):
    ctx, eng = world["ctx"], world["engine"]
    before = _dump(eng)
    out_root = tmp_path / "reviews"
    cand = from_args("<script>alert(1)</script> Vallée", epci=f"{DIJON},{BEAUNE}")
    res = review_candidacy(cand, ctx, out_root=out_root)
    folder = out_root / RELEASE / cand.slug()
    assert res.paths["folder"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["review.csv", "review.html", "review.json", "review.xlsx"]
    html = (folder / "review.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Vallée" in html
    assert "DONNÉES SYNTHÉTIQUES" in html and "sirene_stock 2026-11-01" in html
    doc = json.loads((folder / "review.json").read_text(encoding="utf-8"))
    assert doc["candidacy"]["name"] == "<script>alert(1)</script> Vallée"
    row = next(csv.DictReader(open(folder / "review.csv", encoding="utf-8")))
    assert row["release_id"] == RELEASE and row["data_status"] == "SYNTHETIC" and float(row["jobs_ind"]) == 1500
    assert json.loads(row["source_vintages"])["urssaf"] == "2025"
    from openpyxl import load_workbook

    wb = load_workbook(folder / "review.xlsx")
    assert wb.sheetnames == ["Lisez-moi", "Candidature", "Indicateurs", "EPCI membres", "Remarques"]
    head = [c.value for c in wb["Candidature"][1]]
    values = dict(zip(head, [c.value for c in wb["Candidature"][2]]))
    assert values["jobs_ind"] == 1500 and values["n_epci"] == 2 and values["release_id"] == RELEASE
    readme = {r[0].value: r[1].value for r in wb["Lisez-moi"].iter_rows()}
    assert "sirene_stock 2026-11-01" in readme["Millésimes des sources"] and readme["ATTENTION"].startswith("DONNÉES SYN")
    # same candidacy + release: replaced as a whole (same bytes: nothing time-stamped)
    (folder / "stale.txt").write_text("left by an older version")
    first = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix != ".txt"}
    again = review_candidacy(from_args("<script>alert(1)</script> Vallée", epci=f"{DIJON},{BEAUNE}"), ctx,
                             out_root=out_root)
    assert again.paths["folder"] == str(folder) and not (folder / "stale.txt").exists()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first
    # another candidacy with the same name: another folder, the first one untouched
    other = review_candidacy(from_args("<script>alert(1)</script> Vallée", epci=DIJON), ctx, out_root=out_root)
    assert other.paths["folder"] != str(folder) and {p.name: p.read_bytes() for p in folder.iterdir()} == first
    assert sorted(p.name for p in (out_root / RELEASE).iterdir()) == sorted([folder.name, other.paths["folder"].split("/")[-1]])
    assert _dump(eng) == before  # the warehouse is only read


def test_sql_injection_is_data_and_the_warehouse_is_intact(world, tmp_path):
    eng = world["engine"]
    settings = _settings(world)
    before = _dump(eng)
    evil = "'; DROP TABLE releases; --"
    out = run_review(settings, name=evil, epci=f"{DIJON},{BEAUNE}", engine=eng)
    doc = json.loads(open(out["paths"]["json"], encoding="utf-8").read())
    assert doc["candidacy"]["name"] == evil
    assert "&#39;; DROP TABLE releases; --" in open(out["paths"]["html"], encoding="utf-8").read()
    with pytest.raises(CandidacyRejected, match="aucun code valide"):
        run_review(settings, name="X", epci=evil, engine=eng)
    with pytest.raises(ReviewInputsError, match="not a release id"):
        run_review(settings, name="X", epci=DIJON, release="2026-11'; DROP TABLE releases; --", engine=eng)
    with pytest.raises(ReviewInputsError, match=r"release '2019-01' is not in the warehouse \(complete releases: 2026-11\)"):
        run_review(settings, name="X", epci=DIJON, release="2019-01", engine=eng)
    assert _dump(eng) == before
    assert warehouse.list_releases(eng)["release_id"].tolist() == [RELEASE]


def test_restricted_inputs_are_never_published(world):
    """review_inputs holds unmasked counts: no view, no export, not in the documented schema."""
    from territoires_industrie.publish import build_exports, load_release

    eng = world["engine"]
    assert "review_inputs" not in warehouse.RELEASE_TABLES and "review_inputs" not in warehouse.schema_markdown()
    assert not any("review_inputs" in v for v in warehouse.LATEST_VIEWS.values())
    with eng.connect() as c:
        names = [r[0] for r in c.execute(sa.text("SELECT name FROM review_inputs WHERE release_id = :r"),
                                         {"r": RELEASE})]
    assert sorted(names) == ["adjacency", "counts", "membership", "meta", "passage", "reference_models"]
    out = build_exports(load_release(eng, RELEASE), world["tmp"] / "exports")
    for path in (world["tmp"] / "exports").iterdir():
        if path.suffix == ".csv":
            text = path.read_text(encoding="utf-8-sig")
            assert "band_sumsq" not in text and "secret__ind1" not in text and "flow_closures" not in text
    assert out


def test_a_release_without_review_inputs_is_refused_clearly(tmp_path):
    from .report_fixture import publish_fixture

    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/old.db")
    publish_fixture(eng)
    with pytest.raises(ReviewInputsError, match="published without its review inputs"):
        load_review_context(eng)
    eng.dispose()
    empty = warehouse.get_engine(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(ReviewInputsError, match="no release is published"):
        load_review_context(empty)
    empty.dispose()


def _settings(world):
    from territoires_industrie.config import get_settings

    return get_settings({"TI_DATA_DIR": str(world["data"]), "TI_WAREHOUSE_URL": world["url"]})


@pytest.mark.postgres
def test_review_inputs_round_trip_through_postgres_copy(world, tmp_path):
    """Published with COPY on PostgreSQL, the release gives the same review as on SQLite."""
    import uuid

    pytest.importorskip("psycopg2")
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name = f"ti_review_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc.orig}")
    pg = warehouse.get_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}")
    try:
        publish_world(pg, write_geometry(tmp_path / "geo"))
        cand = from_args("Dijon-Beaune", epci=f"{DIJON},{BEAUNE}")
        a = assess(cand, load_review_context(pg))
        b = assess(cand, world["ctx"])
        assert (a["indicators"], a["composite"], a["flags"], a["perimeter"]) == \
            (b["indicators"], b["composite"], b["flags"], b["perimeter"])
    finally:
        pg.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_without_geometry_contiguity_is_said_unchecked(tmp_path):
    eng = warehouse.get_engine(f"sqlite:///{tmp_path}/nogeo.db")
    publish_world(eng, geometry=None, draws=50)
    doc = assess(from_args("Dijon-Beaune", epci=f"{DIJON},{BEAUNE}"), load_review_context(eng))
    eng.dispose()
    assert doc["flags"]["contiguity"]["value"] is None and doc["flags"]["contiguity"]["checked"] is False
    assert doc["perimeter"]["checks"]["contiguity"]["reason"].startswith("pas de géométrie des EPCI")
    assert doc["release"]["mc_draws"] == 50 and doc["composite"][0]["mc"]["draws"] == 50


def test_exact_figures_only_in_the_explicit_restricted_mode_and_marked_everywhere(world, tmp_path):
    """Issue 20 item 3: an entitled reviewer gets the group's exact figures only by asking for
    "diffusion restreinte"; every output then says so, lives in its own owner-only folder, and
    the default review of the same group still shows nothing secret."""
    import os
    import stat

    from openpyxl import load_workbook
    from territoires_industrie.review import CandidacyFileError

    eng, settings = world["engine"], _settings(world)
    hidden = world["res"].counts.set_index(["level", "territory_id"]).loc[("epci", BUGEY), "jobs_ind_t1"]
    group_total = int(900 + hidden)
    shown = f"{group_total:,}".replace(",", NNBSP)

    public = run_review(settings, name="Dijon-Bugey", epci=f"{DIJON},{BUGEY}", engine=eng)
    assert public["diffusion"] == "publique" and "/reviews/" in public["paths"]["folder"]
    for key in ("html", "json", "csv"):
        text = open(public["paths"][key], encoding="utf-8").read()
        assert "RESTREINTE" not in text.upper(), key
    assert shown not in open(public["paths"]["html"], encoding="utf-8").read()

    out = run_review(settings, name="Dijon-Bugey", epci=f"{DIJON},{BUGEY}", engine=eng, restricted=True)
    folder = out["paths"]["folder"]
    assert out["diffusion"] == "restreinte" and out["text"].startswith("[DIFFUSION RESTREINTE]")
    assert folder.startswith(str(world["data"] / "reviews-restreintes")) and "/reviews/" not in folder
    html = open(out["paths"]["html"], encoding="utf-8").read()
    assert "<title>DIFFUSION RESTREINTE" in html and 'id="restricted-banner"' in html and shown in html
    doc = json.loads(open(out["paths"]["json"], encoding="utf-8").read())
    assert doc["diffusion"]["mode"] == "restreinte" and doc["diffusion"]["label"] == "DIFFUSION RESTREINTE"
    jobs = _ind(doc, "jobs_ind")
    assert jobs["secret_status"] == "D" and jobs["value"] == group_total  # still says the cell is secret
    assert doc["data_quality"][0].startswith("DIFFUSION RESTREINTE")
    row = next(csv.DictReader(open(out["paths"]["csv"], encoding="utf-8")))
    assert row["diffusion"] == "DIFFUSION RESTREINTE" and float(row["jobs_ind"]) == group_total
    readme = {r[0].value: r[1].value for r in load_workbook(out["paths"]["xlsx"])["Lisez-moi"].iter_rows()}
    assert readme["Diffusion"] == "DIFFUSION RESTREINTE" and "secret statistique" in readme["DIFFUSION RESTREINTE"]
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in (out["paths"][k] for k in ("html", "json", "csv", "xlsx"))} == {0o600}
    # the public review of the same group is untouched by the restricted one
    assert shown not in open(public["paths"]["html"], encoding="utf-8").read()
    with pytest.raises(CandidacyFileError, match="une candidature à la fois"):
        run_review(settings, csv_path=tmp_path / "lot.csv", engine=eng, restricted=True)
