"""What a table's run looks like right now, built from engine events: shown by the dashboard,
written to a small JSON snapshot by every run (headless too) and read back by `s3rs watch`."""
