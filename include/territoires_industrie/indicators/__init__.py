"""Pure functions from typed tables to indicator tables (no I/O)."""
