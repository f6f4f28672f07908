"""The Textual dashboard. It only observes and commands the engine: runs go on in thread workers,
engine events arrive as coalescing messages, and every change of state goes through s3rs_tui.ops,
exactly as the CLI commands do."""
