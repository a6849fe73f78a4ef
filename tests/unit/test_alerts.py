"""Early warning (issue 15) on a hand-built case: every event type from a batch of updates, the
jobs at stake, idempotent replay, a stale batch refused, and the signal numbers worked out by
hand (counts, jobs band, expected value, Poisson tail probability)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from territoires_industrie.alerts import signals, store

AS_OF = "2026-11-01"
EPCI_A, EPCI_B = "200000001", "200000002"
COMMUNES = {"21001": EPCI_A, "21002": EPCI_A, "21003": EPCI_B}


def _map(codes: pd.Series) -> pd.Series:
    return codes.where(codes.isin(list(COMMUNES)) | codes.eq("21999"), None).replace({"21999": "21001"})


def _extract() -> pd.DataFrame:
    rows = [  # siret, commune, naf, etat, tranche
        ("10000000000001", "21001", "25.62B", "A", "21"),  # closes (50-99)
        ("10000000000002", "21001", "10.71C", "F", "11"),  # re-opens
        ("10000000000003", "21001", "28.11Z", "A", "12"),  # moves to EPCI B
        ("10000000000004", "21002", "24.10Z", "A", "22"),  # becomes a wholesaler (46.xx)
        ("10000000000005", "21002", "29.10Z", "A", "32"),  # 250-499 -> 100-199
        ("10000000000006", "21999", "25.11Z", "A", "12"),  # merged commune -> 21001; untouched
        ("10000000000007", "21003", "16.10A", "A", "11"),  # non-diffusible closure
    ]
    return pd.DataFrame({
        "siret": [r[0] for r in rows], "codeCommuneEtablissement": [r[1] for r in rows],
        "activitePrincipaleEtablissement": [r[2] for r in rows], "etatAdministratifEtablissement": [r[3] for r in rows],
        "caractereEmployeurEtablissement": "O", "trancheEffectifsEtablissement": [r[4] for r in rows],
        "anneeEffectifsEtablissement": "2024", "dateCreationEtablissement": "2001-01-01", "dateDebut": "2001-01-01"})


def _update(siret, commune, naf, etat, tranche, treated, debut="2026-11-10", diffusion="O", created="2001-01-01",
            name="USINE"):
    return {"siret": siret, "codeCommuneEtablissement": commune, "activitePrincipaleEtablissement": naf,
            "etatAdministratifEtablissement": etat, "trancheEffectifsEtablissement": tranche,
            "anneeEffectifsEtablissement": "2024", "statutDiffusionEtablissement": diffusion,
            "dateDernierTraitementEtablissement": treated, "dateDebut": debut, "dateCreationEtablissement": created,
            "denominationUsuelleEtablissement": name, "enseigne1Etablissement": ""}


def _batch() -> pd.DataFrame:
    t = "2026-11-12T08:00:00.123"
    return pd.DataFrame([
        _update("10000000000001", "21001", "25.62B", "F", "21", t, debut="2026-11-09", name="FONDERIE DU VAL"),
        _update("10000000000002", "21001", "10.71C", "A", "11", t, debut="2026-11-05"),
        _update("10000000000003", "21003", "28.11Z", "A", "12", t),
        _update("10000000000004", "21002", "46.72Z", "A", "22", t),
        _update("10000000000005", "21002", "29.10Z", "A", "22", t),
        _update("10000000000007", "21003", "16.10A", "F", "11", t, debut="2026-11-08", diffusion="P", name="[ND]"),
        _update("10000000000008", "21003", "25.99B", "A", "01", t, created="2026-11-03"),  # creation
        _update("10000000000009", "21002", "22.22Z", "A", "03", t, created="2010-05-05"),  # into industry
        _update("10000000000010", "21002", "56.10A", "F", "01", t),  # a restaurant closes: not ours
    ])


@pytest.fixture()
def merged():
    st = store.seed(_extract(), _map, AS_OF)
    batch = store.normalise_batch(_batch(), _map)
    return st, batch, *store.merge_batch(st, batch, "b1", AS_OF)


def test_every_event_type_with_its_jobs_band(merged):
    seeded, _, st, ev, counts = merged
    assert seeded.loc[seeded["siret"] == 10000000000006, "codgeo"].item() == "21001"  # merged commune mapped
    by = {(r["type"], r["siret"]): r for r in ev.to_dict("records")}
    assert set(ev["type"]) == set(store.EVENT_TYPES)
    close = by[("fermeture", "10000000000001")]
    assert (close["effective_date"], close["tranche"], close["jobs_lo"], close["jobs_hi"]) == ("2026-11-09", "21", 50, 99)
    assert close["jobs_mid"] == pytest.approx(math.sqrt(50 * 99)) and close["name"] == "FONDERIE DU VAL"
    assert by[("reouverture", "10000000000002")]["effective_date"] == "2026-11-05"
    move = by[("transfert", "10000000000003")]
    assert (move["codgeo_from"], move["codgeo"]) == ("21001", "21003")
    assert by[("sortie_industrie", "10000000000004")]["naf_from"] == "24.10Z"
    drop = by[("baisse_effectif", "10000000000005")]
    assert (drop["tranche"], drop["tranche_to"], drop["jobs_lo"], drop["jobs_hi"]) == ("32", "22", 51, 399)
    assert by[("creation", "10000000000008")]["effective_date"] == "2026-11-12"
    assert ("entree_industrie", "10000000000009") in by
    nd = by[("fermeture", "10000000000007")]
    assert not nd["diffusible"] and nd["name"] is None
    assert not (ev["siret"] == "10000000000010").any()  # never industrial: not in the store, no event
    # type-2 history: the closed plant has its old version closed and a current F version
    v = st[st["siret"] == 10000000000001].sort_values("valid_from")
    assert v["etat"].tolist() == ["A", "F"]
    assert v["valid_to"].iloc[0] == pd.Timestamp("2026-11-12T08:00:00.123") and pd.isna(v["valid_to"].iloc[1])
    assert v["valid_from"].iloc[1] == pd.Timestamp("2026-11-12T08:00:00.123")
    assert counts["versions_closed"] == 6 and counts["versions_written"] == 8


def test_replaying_a_batch_changes_nothing_and_a_stale_batch_is_refused(merged):
    _, batch, st, ev, _ = merged
    fp = "a" * 64  # the stage uses the landed file's sha256
    state = {"watermark": "2026-11-12T08:00:00.123", "last_batch": "b1",
             "batches": {"b1": {"digest": fp, "merged_at": "2026-11-13"}}}
    assert store.plan_batch(state, "b1", fp, batch["treated"].max()) == "replay"
    again, ev2, counts = store.merge_batch(st, batch, "b1", AS_OF)  # even when forced: no new version
    assert ev2.empty and counts["versions_written"] == 0
    pd.testing.assert_frame_equal(again, st)
    with pytest.raises(store.BatchConflict, match="already merged .* with other content"):
        store.plan_batch(state, "b1", "0" * 64, batch["treated"].max())
    with pytest.raises(store.StaleBatch, match=r"latest treatment 2026-11-10T00:00:00.000 is older than the store's "
                                               r"watermark 2026-11-12T08:00:00.123"):
        store.plan_batch(state, "b0", "f" * 64, "2026-11-10T00:00:00.000")


def _membership() -> pd.DataFrame:
    return pd.DataFrame({"level": "epci", "territory_id": list(COMMUNES.values()), "codgeo": list(COMMUNES)})


def test_signal_numbers_worked_out_by_hand():
    """EPCI A, 30 days to 2026-12-01: three closures (50-99 and 20-49 diffusible, 10-19 not);
    the same window of 2021..2025 had 1, 0, 2, 1, 0 closures."""
    ev = pd.DataFrame({
        "type": ["fermeture", "fermeture", "fermeture", "creation", "fermeture"],
        "effective_date": ["2026-11-20", "2026-11-05", "2026-11-28", "2026-11-20", "2026-10-01"],
        "codgeo": ["21001", "21002", "21001", "21001", "21001"], "codgeo_from": None,
        "jobs_lo": [50, 20, 10, 1, 200], "jobs_hi": [99, 49, 19, 2, 249],
        "jobs_mid": [math.sqrt(50 * 99), math.sqrt(20 * 49), math.sqrt(10 * 19), math.sqrt(2), 223.6],
        "diffusible": [True, True, False, True, True]})
    hist_dates = ["2025-11-15", "2023-11-02", "2023-11-30", "2022-11-20", "2021-10-01", "2025-10-15"]
    hist = pd.DataFrame({"siret": [f"9{i:013d}" for i in range(len(hist_dates))], "date": hist_dates, "naf": "25.62B"})
    commune_of = pd.Series("21001", index=hist["siret"])
    past = signals.baseline(hist, commune_of, _membership(), "2026-12-01", windows=(30,), years=5)
    assert past.loc[("epci", EPCI_A, 30)] == 4  # 2025: 1, 2023: 2, 2022: 1 (2021-10-01 and 2025-10-15 outside)
    sig = signals.territory_signals(ev, _membership(), past, "2026-12-01", windows=(30,), years=5)
    a = sig.set_index("territory_id").loc[EPCI_A]
    assert (a["closures"], a["closures_large"], a["closures_nondiffusible"]) == (3, 1, 1)
    assert (a["jobs_lo"], a["jobs_hi"]) == (70, 148)
    assert a["jobs_mid"] == pytest.approx(math.sqrt(50 * 99) + math.sqrt(20 * 49))
    assert a["expected"] == pytest.approx(0.8) and a["rate"] == pytest.approx(0.9)
    tail = 1 - math.exp(-0.9) * (1 + 0.9 + 0.9 ** 2 / 2)  # P(X >= 3), X ~ Poisson(0.9)
    assert a["p_tail"] == pytest.approx(tail, rel=1e-9) and round(tail, 4) == 0.0629
    # Poisson(0.9) quantiles: P(X = 0) = 0.41 >= 5 %; P(X <= 2) = 0.937 < 95 % <= P(X <= 3) = 0.987
    assert (a["expected_lo"], a["expected_hi"]) == (0, 3)
    assert a["alerted"] and a["alert_reason"] == "fermeture_50_plus" and a["creations"] == 1
    b = sig.set_index("territory_id").loc[EPCI_B]
    assert (b["closures"], b["alerted"], b["expected"], b["p_tail"]) == (0, False, 0.0, 1.0)


def test_improbably_many_small_closures_alert_without_a_large_one():
    ev = pd.DataFrame({"type": "fermeture", "effective_date": ["2026-11-2%d" % i for i in range(5)],
                       "codgeo": "21003", "codgeo_from": None, "jobs_lo": 3.0, "jobs_hi": 5.0,
                       "jobs_mid": np.sqrt(15.0), "diffusible": True})
    sig = signals.territory_signals(ev, _membership(), pd.Series(dtype="float64"), "2026-12-01", windows=(30,))
    b = sig.set_index("territory_id").loc[EPCI_B]
    # no history: rate 0.5 / 5 = 0.1; P(X >= 5 | 0.1) ~ 7.7e-8
    assert b["p_tail"] == pytest.approx(1 - sum(math.exp(-0.1) * 0.1 ** k / math.factorial(k) for k in range(5)))
    assert b["alerted"] and b["alert_reason"] == "fermetures_improbables"


def test_a_non_diffusible_large_closure_is_counted_but_its_size_never_shows():
    """An alert "a 50+ plant closed in EPCI B" would tell the size of an establishment that
    refused diffusion: it is counted as non-diffusible, with no band, no jobs and no 50+ rule."""
    ev = pd.DataFrame({"type": ["fermeture"], "effective_date": ["2026-11-20"], "codgeo": ["21003"],
                       "codgeo_from": None, "jobs_lo": [250.0], "jobs_hi": [499.0], "jobs_mid": [353.2],
                       "diffusible": [False]})
    sig = signals.territory_signals(ev, _membership(), pd.Series(dtype="float64"), "2026-12-01", windows=(30,),
                                    stock_date="2026-11-01")
    b = sig.set_index("territory_id").loc[EPCI_B]
    assert (b["closures"], b["closures_nondiffusible"], b["closures_large"]) == (1, 1, 0)
    assert (b["jobs_lo"], b["jobs_mid"], b["jobs_hi"]) == (0, 0, 0)
    assert not b["alerted"] and b["closures_large_since_stock"] == 0 and b["closures_since_stock"] == 1
