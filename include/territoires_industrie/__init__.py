"""Territoires d'industrie — industrial-difficulty indicators.

One importable library for the whole pipeline: sources (fetch + parse), validation,
indicators, warehouse publication, report and candidacy review. Nothing here imports
Airflow: DAG files in ``dags/`` call these functions inside tasks.
"""

__version__ = "0.1.0"
