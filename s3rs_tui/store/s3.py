"""The object store on S3 (or an S3-compatible server), through boto3.

Compare-and-swap uses S3 conditional writes (If-None-Match / If-Match), so locks and watermarks
need no other coordination service. Server-side encryption, when configured, is asked for on every
write (data files, watermarks, locks, manifests), not left to the bucket's default. Every boto error
leaves as TransientError (retry or rerun) or S3rsError (someone must fix the bucket, credentials or
permissions), each one line long.
"""

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
)

from s3rs_tui.runtime.errors import S3rsError, TransientError
from s3rs_tui.runtime.workdir import OwnedFolder
from s3rs_tui.store.base import ObjectInfo

_RETRYABLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequestsException",
                    "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled",
                    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
                    "InternalError", "ServiceUnavailable"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                 "InvalidToken", "AllAccessDisabled"}
_LOST_RACE_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_ABSENT_CODES = {"NoSuchKey", "404"}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


class S3Store:
    """Keys live under `s3://bucket/prefix/`; the tag is the object's ETag."""

    def __init__(self, bucket: str, prefix: str, *, region: str, endpoint_url: str,
                 access_key_id: str, secret_access_key: str, max_concurrency: int, chunk_size: int,
                 multipart_threshold: int, connect_timeout: float = 10, read_timeout: float = 60,
                 max_attempts: int = 5, sse: str = "", sse_kms_key_id: str = ""):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"mode": "standard", "max_attempts": max_attempts},
                        s3={"addressing_style": "path"} if endpoint_url else None)
        # Empty credentials fall back to the usual AWS chain (environment, profile, instance role).
        self._client = boto3.session.Session().client(
            "s3", region_name=region or None, endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key_id or None, aws_secret_access_key=secret_access_key or None,
            config=config)
        self._transfer = TransferConfig(max_concurrency=max_concurrency, multipart_chunksize=chunk_size,
                                        multipart_threshold=multipart_threshold)
        self._scratch: Path | None = None
        self._scratch_lock = threading.Lock()
        self._encryption = {"ServerSideEncryption": sse} if sse else {}
        if sse == "aws:kms" and sse_kms_key_id:
            self._encryption["SSEKMSKeyId"] = sse_kms_key_id

    def scratch_dir(self) -> Path:
        with self._scratch_lock:
            if self._scratch is None:
                owned = OwnedFolder("s3rs-s3-")  # a killed process's is removed by the next one
                self._scratch = owned.path
                weakref.finalize(self, owned.remove)
            return self._scratch

    def put_file(self, key: str, path: Path) -> int:
        size = path.stat().st_size
        with self._errors(key):
            self._client.upload_file(str(path), self.bucket, self.prefix + key, Config=self._transfer,
                                     ExtraArgs=self._encryption)
            stored = self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)["ContentLength"]
        if stored != size:
            raise TransientError(f"S3 stored {stored} bytes for {self._where(key)}, expected {size}")
        path.unlink()
        return size

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **self._encryption)

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        with self._errors(key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if _code(exc) in _ABSENT_CODES:
                    return None
                raise
            return response["Body"].read(), response["ETag"]

    def get_tail(self, key: str, length: int) -> bytes | None:
        with self._errors(key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key,
                                                   Range=f"bytes=-{length}")
            except ClientError as exc:
                if _code(exc) in _ABSENT_CODES:
                    return None
                raise
            return response["Body"].read()

    def download(self, key: str, path: Path) -> None:
        with self._errors(key):
            self._client.download_file(self.bucket, self.prefix + key, str(path), Config=self._transfer)

    def create(self, key: str, data: bytes) -> str | None:
        with self._errors(key):
            try:
                response = self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                                                   IfNoneMatch="*", **self._encryption)
            except ClientError as exc:
                if _code(exc) in _LOST_RACE_CODES:
                    return None
                raise
        return response["ETag"]

    def replace(self, key: str, data: bytes, tag: str) -> str | None:
        with self._errors(key):
            try:
                response = self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data,
                                                   IfMatch=tag, **self._encryption)
            except ClientError as exc:
                if _code(exc) in _LOST_RACE_CODES | _ABSENT_CODES:
                    return None
                raise
        return response["ETag"]

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                         Prefix=self.prefix + prefix)
        with self._errors(prefix):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(self.prefix):], item["Size"],
                                     item["LastModified"].astimezone(UTC))

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Translate boto errors; the messages carry the code and key, never credentials."""
        try:
            yield
        except S3UploadFailedError as exc:  # upload_file hides the ClientError it caught
            cause = exc.__context__
            raise (self._translate(cause, key) if isinstance(cause, ClientError)
                   else S3rsError(f"S3 upload to {self._where(key)} failed: {exc}")) from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from exc

    def _translate(self, exc: ClientError | BotoCoreError, key: str) -> S3rsError:
        where = self._where(key)
        if isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError)):
            return TransientError(f"S3 unreachable for {where}: {exc}")
        if isinstance(exc, BotoCoreError):
            return S3rsError(f"S3 {where}: {exc}")
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message") or code
        if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
            return TransientError(f"S3 error {code or status} for {where}: {message}")
        if code == "NoSuchBucket":
            return S3rsError(f"S3 bucket '{self.bucket}' does not exist")
        if status == 403 or code in _DENIED_CODES:
            return S3rsError(f"S3 refused access to {where} ({code or status}): "
                             "check the credentials and the bucket policy")
        return S3rsError(f"S3 error {code or status} for {where}: {message}")
