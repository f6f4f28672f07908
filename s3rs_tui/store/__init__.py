"""Where backups go: S3 when a bucket is configured, else a local folder."""

from pathlib import Path

from s3rs_tui.runtime.config import Settings
from s3rs_tui.store.base import ObjectInfo, ObjectStore
from s3rs_tui.store.local import LocalStore

__all__ = ["ObjectInfo", "ObjectStore", "open_store"]


def open_store(settings: Settings) -> ObjectStore:
    s3 = settings.s3
    if not s3.bucket:
        return LocalStore(Path(s3.local_path), s3.prefix)
    from s3rs_tui.store.s3 import S3Store  # noqa: PLC0415 - boto3 takes 0.12 s to import: only when used

    return S3Store(s3.bucket, s3.prefix, region=s3.region, endpoint_url=s3.endpoint_url,
                   access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key,
                   max_concurrency=s3.max_concurrency, chunk_size=s3.chunk_size,
                   multipart_threshold=s3.multipart_threshold, read_timeout=s3.timeout_seconds,
                   sse=s3.sse, sse_kms_key_id=s3.sse_kms_key_id)
