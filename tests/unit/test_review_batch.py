"""Batch review and the ``ti-indicators review`` command: bad rows and bad candidacies are
reported by line and field while the others are reviewed, and the summary ranks them."""

from __future__ import annotations

import csv
import itertools
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from territoires_industrie import cli, warehouse
from territoires_industrie.config import get_settings
from territoires_industrie.review import run_review

from .review_world import BEAUNE, CLUSES, DIJON, EPCI, FAUCIGNY, RELEASE, publish_world, write_geometry


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review_batch")
    data = tmp / "data"
    data.mkdir()
    url = f"sqlite:///{data}/warehouse.db"
    eng = warehouse.get_engine(url)
    publish_world(eng, write_geometry(tmp / "geo"))
    eng.dispose()
    return {"tmp": tmp, "data": data, "url": url,
            "settings": get_settings({"TI_DATA_DIR": str(data), "TI_WAREHOUSE_URL": url})}


BATCH = (
    "\ufeffdossier;nom_candidature;siren_epci\n"   # 1
    f"201;Dijon-Beaune;{DIJON}\n"                   # 2
    f"201;Dijon-Beaune;{BEAUNE}\n"                  # 3
    f"202;Vallée de l'Arve;{FAUCIGNY}\n"            # 4
    f"202;Vallée de l'Arve;{CLUSES}\n"              # 5
    "203;Coquilles;20000017\n"                      # 6: 8 digits
    "203;Coquilles;21003\n"                         # 7: a commune (Ahuy, in Dijon Métropole)
    f"204;Champs en trop;{DIJON};x\n"               # 8
    "205;Inconnue;243500139\n"                      # 9: a real SIREN, not in this release
)


def test_batch_reports_bad_rows_and_ranks_the_good_ones(env):
    path = env["tmp"] / "depot_ds.csv"
    path.write_text(BATCH, encoding="utf-8")
    out = run_review(env["settings"], csv_path=path)
    assert (out["mode"], out["reviewed"], out["rejected"]) == ("batch", 2, 2)
    assert out["file_problems"] == ["ligne 8 : 4 champ(s) au lieu de 3 (séparateur « ; ») ; ligne ignorée"]
    rej = {r["name"]: r["problems"] for r in out["rejections"]}
    assert rej["Coquilles"][0].startswith("ligne 6, champ siren_epci : « 20000017 » n'est pas un code valide (8 chiffres)")
    assert any(m.startswith("ligne 7, champ siren_epci : « 21003 » est un code commune (Ahuy)") and DIJON in m
               for m in rej["Coquilles"])
    assert any("« 243500139 » n'est pas un EPCI du COG 2023" in m for m in rej["Inconnue"])
    folder = Path(out["paths"]["folder"])
    assert folder.parent == env["data"] / "reviews" / RELEASE and folder.name.startswith("batch-depot-ds-")
    summary = pd.read_csv(folder / "summary.csv", dtype={"dossier": str})
    assert summary["statut"].tolist() == ["examinée", "examinée", "rejetée", "rejetée"]
    ranked = summary[summary["statut"] == "examinée"]
    assert ranked["rang"].tolist() == [1, 2] and ranked["score"].is_monotonic_decreasing
    assert set(ranked["dossier"]) == {"201", "202"}
    for link in ranked["html"]:  # every reviewed candidacy has its own page next to the batch
        page = folder / link
        assert page.resolve().is_file() and (page.parent / "review.json").is_file() and (page.parent / "review.csv").is_file()
    problems = pd.read_csv(folder / "problems.csv")
    assert {"malformed_row", "invalid_code", "commune_as_epci", "unknown_epci"} <= set(problems["code"])
    raw_rows = [r["row"] for r in csv.DictReader(open(folder / "problems.csv", encoding="utf-8")) if r["row"]]
    assert raw_rows and all(r.isdigit() for r in raw_rows), raw_rows  # "7", never "7.0" (issue 21)
    detail = list(csv.DictReader(open(folder / "candidatures.csv", encoding="utf-8")))
    assert {r["candidature"] for r in detail} == {"Dijon-Beaune", "Vallée de l'Arve"}
    assert next(r for r in detail if r["dossier"] == "201")["jobs_ind"] == "1500.0"
    from openpyxl import load_workbook

    wb = load_workbook(folder / "summary.xlsx")
    assert wb.sheetnames == ["Lisez-moi", "Classement", "Remarques", "Candidatures (détail)"]
    html = (folder / "summary.html").read_text(encoding="utf-8")
    assert "Vallée de l&#39;Arve" in html and "DONNÉES SYNTHÉTIQUES" in html and "rejetée" in html


def test_two_hundred_candidacies_in_one_run(env):
    """Batch mode at the size of the 2023 call (183 laureates): 200 candidacies of 1-4 EPCI,
    reviewed and ranked in one run (the timing is printed; targets live in bench/)."""
    codes = sorted(EPCI)
    combos = [c for k in (2, 3, 4, 1) for c in itertools.combinations(codes, k)]
    lines = ["dossier,nom_candidature,siren_epci"]
    for i, combo in enumerate(combos[:200]):
        lines += [f"D{i:03d},Candidature {i:03d},{e}" for e in combo]
    path = env["tmp"] / "lot_200.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t = time.perf_counter()
    out = run_review(env["settings"], csv_path=path)
    dt = time.perf_counter() - t
    print(f"\n  200 candidacies reviewed and ranked in {dt:.1f} s ({200 / dt:.1f} /s)")
    assert (out["reviewed"], out["rejected"], out["file_problems"]) == (200, 0, [])
    summary = pd.read_csv(Path(out["paths"]["folder"]) / "summary.csv")
    assert summary["rang"].tolist() == list(range(1, 201))
    assert summary["score"].is_monotonic_decreasing and summary["score"].between(0, 100).all()
    assert summary["ensemble_de_classement"].eq("ti_2023_2027").all()
    reviews = [p for p in (env["data"] / "reviews" / RELEASE).iterdir() if re.match(r"d\d{3}-candidature-\d{3}-", p.name)]
    assert len(reviews) == 200


def test_cli_single_batch_and_errors(env, monkeypatch, capsys):
    monkeypatch.setenv("TI_DATA_DIR", str(env["data"]))
    monkeypatch.setenv("TI_WAREHOUSE_URL", env["url"])
    assert cli.main(["review", "--name", "Dijon-Beaune", "--epci", f"{DIJON},{BEAUNE}"]) == 0
    text = capsys.readouterr().out
    assert "Dijon-Beaune — release 2026-11 [DONNÉES SYNTHÉTIQUES]" in text and "24 000 habitants" in text
    html = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("html"))
    assert Path(html).is_file() and Path(html).parent.parent == env["data"] / "reviews" / RELEASE
    assert cli.main(["review", "--name", "Dijon", "--epci", DIJON, "--release", RELEASE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["release_id"] == RELEASE and set(out["paths"]) == {"html", "json", "csv", "xlsx", "folder"}
    assert out["flags"]["epci_cap"] is True
    # bad input: a clear message per problem, exit code 2, nothing written
    before = sorted(p.name for p in (env["data"] / "reviews" / RELEASE).iterdir())
    assert cli.main(["review", "--name", "Vide", "--epci", ""]) == 2
    assert "« Vide » ne contient aucun code" in capsys.readouterr().out
    assert cli.main(["review", "--name", "X", "--epci", "20000017,21003"]) == 2
    text = capsys.readouterr().out
    assert "« 20000017 » n'est pas un code valide (8 chiffres)" in text and f"son EPCI est {DIJON}" in text
    assert cli.main(["review", "--name", "X", "--epci", DIJON, "--release", "2020-01"]) == 1
    assert "release '2020-01' is not in the warehouse" in capsys.readouterr().out
    assert cli.main(["review", "--csv", str(env["tmp"] / "absent.csv")]) == 2
    assert "introuvable" in capsys.readouterr().out
    assert sorted(p.name for p in (env["data"] / "reviews" / RELEASE).iterdir()) == before
