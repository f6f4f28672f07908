"""`python -m s3rs_tui` is the same as the `s3rs` console script."""

from s3rs_tui.cli import main

if __name__ == "__main__":  # not when a spawned range reader imports this as its parent's main module
    main()
