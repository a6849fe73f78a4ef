"""Early warning (issue 15): the daily API Sirene updates turned into establishment events and
per-territory signals.

- :mod:`.store`: a versioned (type-2) store of the industrial establishments, seeded from the
  SIRENE stock and merged batch by batch (idempotent; a stale batch is refused);
- :mod:`.events`: what changed between two versions of an establishment (closure, re-opening,
  transfer, change of activity, size-band drop, creation) with the jobs at stake as a band;
- :mod:`.signals`: closures and jobs at stake per territory over 7 / 30 / 90 days against the
  same windows of the previous years (``StockEtablissementHistorique``), Poisson tail
  probability, alert rule.

Pure computation on DataFrames: reading and writing the store, the warehouse tables, the
report page and the notification are the stage's (``stages/early_warning.py``).
"""
