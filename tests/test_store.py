"""Both object stores must behave the same: one suite, run against a folder and the moto S3 server."""

import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber

from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError, TransientError
from s3rs_tui.store import open_store
from s3rs_tui.store.local import LocalStore
from s3rs_tui.store.s3 import S3Store

MB = 1024**2


def make_s3(bucket, endpoint, **overrides):
    options = dict(region="us-east-1", endpoint_url=endpoint, access_key_id="", secret_access_key="",
                   max_concurrency=4, chunk_size=5 * MB, multipart_threshold=5 * MB)
    return S3Store(bucket, "backups/", **{**options, **overrides})


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store", "backups/")
    return make_s3(request.getfixturevalue("bucket"), request.getfixturevalue("s3_endpoint"))


def staged(store, name: str, data: bytes) -> Path:
    path = store.scratch_dir() / name
    path.write_bytes(data)
    return path


def test_put_file_get_and_list(store):
    assert store.put_file("t/b.parquet", staged(store, "b", b"bbbb")) == 4
    assert store.put_file("t/a.parquet", staged(store, "a", b"aa")) == 2
    assert store.get_bytes("t/a.parquet")[0] == b"aa"
    assert store.get_bytes("t/missing") is None
    listed = list(store.list("t/"))
    assert [(info.key, info.size) for info in listed] == [("t/a.parquet", 2), ("t/b.parquet", 4)]
    for info in listed:
        assert info.modified.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - info.modified) < timedelta(minutes=5)


def test_url(store, tmp_path):
    expected = str(tmp_path / "store" / "backups") if isinstance(store, LocalStore) else \
        f"s3://{store.bucket}/backups/"
    assert store.url == expected


def test_put_bytes_overwrites(store):
    store.put_bytes("state/w.json", b"one")
    store.put_bytes("state/w.json", b"two, longer")
    assert store.get_bytes("state/w.json")[0] == b"two, longer"
    assert [info.size for info in store.list("state/")] == [11]


def test_create_only_once(store):
    assert store.create("locks/t", b"first") == store.get_bytes("locks/t")[1]
    assert store.create("locks/t", b"second") is None
    assert store.get_bytes("locks/t")[0] == b"first"


def test_replace_is_compare_and_swap(store):
    store.put_bytes("locks/t", b"v1")
    _, tag = store.get_bytes("locks/t")
    assert store.replace("locks/t", b"v2", tag) == store.get_bytes("locks/t")[1]
    assert store.replace("locks/t", b"v3", tag) is None  # tag is stale now
    data, new_tag = store.get_bytes("locks/t")
    assert (data, new_tag != tag) == (b"v2", True)
    assert store.replace("locks/missing", b"x", new_tag) is None
    assert store.get_bytes("locks/missing") is None


def test_delete_is_idempotent(store):
    store.put_bytes("x/y", b"1")
    store.delete("x/y")
    store.delete("x/y")
    store.delete("never/there")
    assert store.get_bytes("x/y") is None
    assert list(store.list("x/")) == []


def test_list_prefix_order_and_pages(store):
    if isinstance(store, S3Store):  # small pages make moto paginate without 1000+ uploads
        calls = []
        store._client.meta.events.register("before-parameter-build.s3.ListObjectsV2",
                                           lambda params, **_: calls.append(params.setdefault("MaxKeys", 7)))
    keys = [f"t/a/{i:03d}.parquet" for i in range(30)]
    for key in reversed(keys):
        store.put_bytes(key, key.encode())
    for other in ("t/ab/x", "t/a-z", "t/b/y", "u/a/0"):
        store.put_bytes(other, b"-")
    assert [info.key for info in store.list("t/a/")] == keys
    assert [info.key for info in store.list("t/a")] == ["t/a-z", *keys, "t/ab/x"]
    assert len(list(store.list(""))) == 34
    if isinstance(store, S3Store):
        assert len(calls) > 3


def test_multipart_round_trip(store):
    data = os.urandom(12 * MB)
    assert store.put_file("big/file.bin", staged(store, "big", data)) == len(data)
    stored, tag = store.get_bytes("big/file.bin")
    assert stored == data
    if isinstance(store, S3Store):
        assert tag.strip('"').endswith("-3")  # really three 5 MB-chunk parts


def test_put_file_consumes_source(store):
    source = staged(store, "c", b"payload")
    store.put_file("c/file", source)
    assert not source.exists()


def test_put_file_from_another_folder(store, tmp_path):
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(b"outside the scratch dir")
    assert store.put_file("d/file", source) == 23
    assert not source.exists()
    assert store.get_bytes("d/file")[0] == b"outside the scratch dir"


# Local folder only.

def race(root, barrier, name, tag, results):
    store = LocalStore(root, "backups/")
    barrier.wait()
    created = [store.create(f"locks/{i}", name.encode()) for i in range(20)]
    results.put((name, created, store.replace("cas", name.encode(), tag)))


def test_local_processes_race(tmp_path):
    root = tmp_path / "store"
    first = LocalStore(root, "backups/")
    first.put_bytes("cas", b"v0")
    _, tag = first.get_bytes("cas")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=race, args=(root, barrier, f"p{n}", tag, results)) for n in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    store = LocalStore(root, "backups/")
    for i in range(20):
        winners = [name for name, created, _ in outcomes if created[i]]
        assert len(winners) == 1
        assert store.get_bytes(f"locks/{i}")[0] == winners[0].encode()
    swapped = [name for name, _, replaced in outcomes if replaced]
    assert len(swapped) == 1
    assert store.get_bytes("cas")[0] == swapped[0].encode()


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "", "a/."])
def test_local_refuses_escaping_keys(tmp_path, key):
    store = LocalStore(tmp_path / "store", "backups/")
    with pytest.raises(ValueError):
        store.put_bytes(key, b"x")
    with pytest.raises(ValueError):
        store.get_bytes(key)
    assert list((tmp_path).rglob("escape")) == []


def test_local_scratch_is_hidden_and_cleaned(tmp_path):
    store = LocalStore(tmp_path, "")
    store.put_bytes("k", b"v")
    old, fresh = store.scratch_dir() / "old.tmp", store.scratch_dir() / "fresh.tmp"
    old.write_bytes(b"crash leftover")
    fresh.write_bytes(b"in use")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    assert [info.key for info in store.list("")] == ["k"]
    with pytest.raises(ValueError):
        store.put_bytes(".s3rs-tmp/k", b"v")
    LocalStore(tmp_path, "")
    assert not old.exists() and fresh.exists()


# S3 only.

def test_s3_missing_bucket_is_one_clear_line(s3_endpoint):
    store = make_s3("no-such-bucket-s3rs", s3_endpoint, access_key_id="s3rstest",
                    secret_access_key="s3rstestsecret")
    for attempt in (lambda: store.put_bytes("k", b"v"), lambda: list(store.list(""))):
        with pytest.raises(S3rsError) as caught:
            attempt()
        assert not isinstance(caught.value, TransientError)
        assert str(caught.value) == "S3 bucket 'no-such-bucket-s3rs' does not exist"


def test_s3_unreachable_is_transient(tmp_path, bucket):
    store = make_s3(bucket, "http://127.0.0.1:1", max_attempts=1, connect_timeout=1, read_timeout=1)
    with pytest.raises(TransientError):
        store.get_bytes("k")
    source = tmp_path / "f"
    source.write_bytes(b"kept")
    with pytest.raises(TransientError) as caught:
        store.put_file("k", source)
    assert source.exists()  # not consumed: a rerun uploads it again
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("code,status,transient,text", [
    ("AccessDenied", 403, False, "refused access"), ("InvalidArgument", 400, False, "InvalidArgument"),
    ("SlowDown", 503, True, "SlowDown"), ("InternalError", 500, True, "InternalError"),
])
def test_s3_errors_say_permanent_or_transient(code, status, transient, text):
    store = make_s3("b", "http://127.0.0.1:1", access_key_id="AKIDSECRETISH", secret_access_key="SHHH")
    with Stubber(store._client) as stubber:
        stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)
        with pytest.raises(S3rsError) as caught:
            store.put_bytes("k", b"v")
    assert isinstance(caught.value, TransientError) is transient
    assert text in str(caught.value) and "s3://b/backups/k" in str(caught.value)
    assert "AKID" not in str(caught.value) and "SHHH" not in str(caught.value)


def test_open_store_picks_backend(tmp_path, bucket, s3_endpoint):
    settings = Settings()
    settings.s3.local_path = str(tmp_path / "local")
    assert isinstance(open_store(settings), LocalStore)
    settings.s3.bucket, settings.s3.endpoint_url = bucket, s3_endpoint
    store = open_store(settings)
    assert isinstance(store, S3Store)
    store.put_bytes("k", b"v")
    assert store.get_bytes("k")[0] == b"v"
