"""What an operator does to a table's state (watermark changes, file cleanup), shared by the CLI
commands and the dashboard screens so both behave exactly alike."""
