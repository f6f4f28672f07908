"""`python -m s3rs_tui` is the same as the `s3rs` console script."""

from s3rs_tui.cli import main

main()
