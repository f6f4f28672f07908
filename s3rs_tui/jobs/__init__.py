"""The jobs an operator runs, composed from the engine and the warehouse: a table's sync (extract,
load, verify) and many tables at once, progressive backfills, verify's comparison of MySQL with
the warehouse, watermark changes and file cleanup. The CLI and the dashboard both call these, so
both behave exactly alike."""
