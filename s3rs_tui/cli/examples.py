"""The examples at the end of each command's --help: the command lines the README gives.

Kept under 76 characters a line, so they show unbroken in an 80-column terminal.
"""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "s3rs": (
        "s3rs                                  # on a terminal: the dashboard",
        "s3rs --config prod.toml sync -t orders",
        "s3rs sync --all --no-ui               # every table, log lines",
        "s3rs --install-completion             # Tab completes table names too",
    ),
    "sync": (
        "s3rs sync -t settlement.settlement_normal_delivery_detail",
        "s3rs sync -t orders -t refunds     # several at once (max_workers)",
        "s3rs sync --all                    # every table of the config",
        "s3rs sync -t orders --limit 1000000 --batch-size 100000",
        "s3rs sync -t orders --dry-run      # the plan; writes nothing",
        "s3rs sync -t orders --json > summary.json",
        "s3rs sync -t orders --backup-only  # store files, do not load them",
        "s3rs sync -t orders --load-only    # only load stored files",
        "s3rs sync -t orders --verify-data  # sync, load, then verify",
    ),
    "progressive": (
        "s3rs progressive settlement.settlement_normal_delivery_detail",
        "s3rs progressive orders --chunk-size 1000000 --max-chunks 10",
        "s3rs progressive orders --start-timestamp '2024-01-01 00:00:00'",
        "s3rs progressive orders --mode full     # load each chunk",
        "nohup s3rs progressive orders --no-ui > /dev/null 2>&1 &",
    ),
    "verify": (
        "s3rs verify -t orders                     # exit 0: they agree",
        "s3rs verify -t orders --chunk-size 50000",
        "s3rs verify -t orders --json",
        "s3rs verify -t orders --against shop.orders_restored",
    ),
    "restore": (
        "s3rs restore -t orders --into shop.orders_restored",
        "s3rs restore -t orders --into shop.orders_then \\",
        "    --as-of '2024-06-01 12:00:00'",
        "s3rs restore -t orders --into shop.o2 --where-key-from 1000 \\",
        "    --where-key-to 1999 --dry-run",
        "s3rs restore -t orders --to-parquet /tmp/orders-state",
    ),
    "reconcile": (
        "s3rs reconcile -t orders --dry-run   # the keys; stores nothing",
        "s3rs reconcile -t orders --no-ui     # store, load; log lines",
        "s3rs reconcile --all --json",
    ),
    "config": (
        "s3rs config                       # secrets shown as ********",
        "s3rs --config prod.toml config --json",
    ),
    "status": (
        "s3rs status          # exit 1 if something cannot be reached",
        "s3rs status --json",
    ),
    "demo": (
        "s3rs demo",
        "s3rs demo --rows 100000 --dir /tmp/s3rs-demo --keep-server",
    ),
    "ui": (
        "s3rs ui",
        "s3rs ui -t orders -t refunds  # with these tables listed too",
    ),
    "watch": (
        "s3rs watch            # runs going on in other processes",
        "s3rs watch -t orders",
    ),
    "watermark": (
        "s3rs watermark get -t orders",
        "s3rs watermark set -t orders --timestamp '2024-06-01 00:00:00' --id 1",
        "s3rs watermark reset -t orders",
        "s3rs watermark list --json",
    ),
    "watermark get": (
        "s3rs watermark get -t orders",
        "s3rs watermark get -t orders --json",
    ),
    "watermark set": (
        "s3rs watermark set -t orders --timestamp '2024-06-01 00:00:00' --id 1",
        "s3rs watermark set -t orders --timestamp '2024-06-01 00:00:00'",
        "s3rs watermark set -t orders --timestamp '2024-06-01' --yes",
    ),
    "watermark reset": (
        "s3rs watermark reset -t orders        # keeps a backup copy",
        "s3rs watermark reset -t orders --yes  # without a terminal",
    ),
    "watermark force-reset": (
        "s3rs watermark force-reset -t orders  # also for a corrupt one",
    ),
    "watermark list": (
        "s3rs watermark list",
        "s3rs watermark list --json",
    ),
    "s3clean": (
        "s3rs s3clean list -t orders --older-than 7d",
        "s3rs s3clean clean -t orders --older-than 30d --dry-run",
        "s3rs s3clean clean -t orders --older-than 30d --yes",
    ),
    "s3clean list": (
        "s3rs s3clean list -t orders",
        "s3rs s3clean list -t orders --older-than 7d --json",
    ),
    "s3clean clean": (
        "s3rs s3clean clean -t orders --older-than 30d --dry-run",
        "s3rs s3clean clean -t orders --older-than 30d --yes",
        "s3rs s3clean clean -t orders --older-than 30d --force  # unloaded too",
    ),
}


def epilog(command: str) -> str:
    """The examples of `command` ("sync", "watermark get") as a Markdown block for Typer's help."""
    return "**Examples**\n\n```\n" + "\n".join(EXAMPLES[command]) + "\n```"
