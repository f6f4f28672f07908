"""A restore's progress in the store: what it restores (source, moment, key range, the very files
it read) and where the last batch committed into the target ended (a file and a row in it), so a
rerun after a kill reads the same files and goes on from there. One object per target,
`_state/restores/<db>.<table>.json`, written atomically after each batch."""

import json
from dataclasses import asdict, dataclass, field, fields

from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.store.base import ObjectStore
from s3rs_tui.store.watermark import STATE_PREFIX, utc_now

IN_PROGRESS, DONE = "in_progress", "done"


@dataclass
class RestoreProgress:
    target: str
    source: str
    as_of: str | None
    key_from: str | list[str] | None            # as given: one text per key column (one: the text)
    key_to: str | list[str] | None
    files: list[str]
    status: str = IN_PROGRESS
    created: bool = False                       # the target table is made (a rerun goes on in it)
    rows: int = 0                               # committed into the target
    position: list[int] | None = None           # [file index, row number] after the last committed row
    deferred_keys: list[str] = field(default_factory=list)  # KEY clauses added once the rows are in
    started_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def same_restore(self, other: "RestoreProgress") -> bool:
        return (self.source, self.as_of, self.key_from, self.key_to) == \
            (other.source, other.as_of, other.key_from, other.key_to)


def progress_key(target: str) -> str:
    return f"{STATE_PREFIX}restores/{target}.json"


def read_progress(store: ObjectStore, target: str) -> RestoreProgress | None:
    found = store.get_bytes(progress_key(target))
    if found is None:
        return None
    try:
        document = json.loads(found[0])
        known = {f.name for f in fields(RestoreProgress)}
        return RestoreProgress(**{k: v for k, v in document.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise S3rsError(f"restore progress {progress_key(target)} is damaged ({exc}): delete it and "
                        "restore again with --replace") from None


def save_progress(store: ObjectStore, progress: RestoreProgress) -> None:
    progress.updated_at = utc_now()
    store.put_bytes(progress_key(progress.target), json.dumps(asdict(progress), indent=2).encode() + b"\n")
