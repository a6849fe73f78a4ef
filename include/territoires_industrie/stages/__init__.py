"""Pipeline stages, one module each: geography -> sirene -> employment -> indicators -> publish.

Each ``run_*`` function is what a DAG task calls; it returns a small JSON-serialisable
summary (paths and counts, never data, never secrets) for XCom.
"""
