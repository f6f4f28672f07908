"""s3rs-tui: exact, resumable MySQL -> Parquet -> object store -> warehouse backups."""

__version__ = "0.1.0"
