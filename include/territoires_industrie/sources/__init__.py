"""One module per official source: locate, fetch (via ``http``), parse by column name."""
