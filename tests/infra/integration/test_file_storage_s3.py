"""The S3 file store against a real S3-compatible HTTP server: moto's, started as its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from doorstep.infra.file_storage import S3FileStore, open_file_store
from doorstep.kernel.files import FileStore, FileTooLarge, InvalidFileKey, StoredFile, StoredFileNotFound
from doorstep.kernel.settings import Settings

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0" + b"photo" * 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_it_answers(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail("moto_server did not answer within 60 s")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = Path(sys.executable).with_name("moto_server")
    port = _free_port()
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_it_answers(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def settings(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "doorstep-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "doorstep-test-secret")
    return Settings(
        files_backend="s3",
        files_s3_bucket=f"pod-{uuid.uuid4().hex[:12]}",
        files_s3_endpoint_url=s3_endpoint,
        files_s3_region="eu-central-1",
        files_max_bytes=1024,
    )


@pytest.fixture
async def files(settings: Settings) -> AsyncIterator[FileStore]:
    async with open_file_store(settings) as store:
        assert isinstance(store, S3FileStore)
        await store.client.create_bucket(
            Bucket=store.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        yield store


async def test_a_photo_put_in_the_bucket_is_read_back_with_its_size_and_type(files: FileStore) -> None:
    # given / when
    stored = await files.put("pod/tenant-a/job-1/photo-1.jpg", JPEG, "image/jpeg")

    # then
    assert stored == StoredFile("pod/tenant-a/job-1/photo-1.jpg", len(JPEG), "image/jpeg")
    assert await files.get("pod/tenant-a/job-1/photo-1.jpg") == JPEG
    assert await files.info("pod/tenant-a/job-1/photo-1.jpg") == stored


async def test_a_presigned_link_downloads_the_file_without_credentials(files: FileStore) -> None:
    # given
    await files.put("pod/signature.png", b"\x89PNG signature", "image/png")

    # when
    url = await files.url("pod/signature.png", timedelta(minutes=5))
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(url)

    # then
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=300" in url
    assert (response.status_code, response.content) == (200, b"\x89PNG signature")
    assert response.headers["content-type"] == "image/png"


async def test_a_deleted_object_is_gone_and_deleting_it_again_is_harmless(files: FileStore) -> None:
    # given
    await files.put("pod/photo.jpg", JPEG, "image/jpeg")

    # when
    await files.delete("pod/photo.jpg")
    await files.delete("pod/photo.jpg")

    # then
    with pytest.raises(StoredFileNotFound):
        await files.get("pod/photo.jpg")
    with pytest.raises(StoredFileNotFound):
        await files.info("pod/photo.jpg")


async def test_the_size_limit_and_the_key_rules_hold_before_anything_is_sent(files: FileStore) -> None:
    # given / when
    with pytest.raises(FileTooLarge):
        await files.put("pod/big.bin", b"x" * 1025, "application/octet-stream")
    with pytest.raises(InvalidFileKey):
        await files.put("../escape.bin", b"x", "application/octet-stream")

    # then
    with pytest.raises(StoredFileNotFound):
        await files.info("pod/big.bin")
