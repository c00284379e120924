"""The local file store on a real temporary directory, and the signed links the API will serve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from doorstep.infra.file_storage import LocalFileStore, link_signer, open_file_store
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.files import (
    FileLinkRefused,
    FileLinkSigner,
    FileTooLarge,
    InvalidContentType,
    InvalidFileKey,
    StoredFile,
    StoredFileNotFound,
)
from doorstep.kernel.settings import Settings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SIGNER = FileLinkSigner(b"a secret of at least thirty-two bytes")
JPEG = b"\xff\xd8\xff\xe0" + b"photo" * 20


def store(root: Path, *, max_bytes: int = 1024) -> LocalFileStore:
    return LocalFileStore(
        root, signer=SIGNER, base_url="https://doorstep.example/", max_bytes=max_bytes, clock=lambda: NOW
    )


def everything_under(path: Path) -> list[Path]:
    return list(path.rglob("*"))


def link_parts(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, int(query["expires"][0]), query["signature"][0]


async def test_a_stored_photo_is_read_back_with_its_size_and_type(tmp_path: Path) -> None:
    # given
    files = store(tmp_path)

    # when
    stored = await files.put("pod/tenant-a/job-1/photo-1.jpg", JPEG, "image/jpeg")

    # then
    assert stored == StoredFile(
        key="pod/tenant-a/job-1/photo-1.jpg", size=len(JPEG), content_type="image/jpeg"
    )
    assert await files.get("pod/tenant-a/job-1/photo-1.jpg") == JPEG
    assert await files.info("pod/tenant-a/job-1/photo-1.jpg") == stored
    assert (tmp_path / "pod/tenant-a/job-1/photo-1.jpg").read_bytes() == JPEG


async def test_storing_again_under_the_same_key_replaces_the_file(tmp_path: Path) -> None:
    # given
    files = store(tmp_path)
    await files.put("pod/sig.png", b"first", "image/png")

    # when
    await files.put("pod/sig.png", b"second", "image/svg+xml")

    # then
    assert await files.get("pod/sig.png") == b"second"
    assert await files.info("pod/sig.png") == StoredFile("pod/sig.png", 6, "image/svg+xml")
    assert sorted(p.name for p in (tmp_path / "pod").iterdir()) == ["sig.png"]


async def test_a_deleted_file_is_gone_and_deleting_it_again_is_harmless(tmp_path: Path) -> None:
    # given
    files = store(tmp_path)
    await files.put("pod/photo.jpg", JPEG, "image/jpeg")

    # when
    await files.delete("pod/photo.jpg")
    await files.delete("pod/photo.jpg")

    # then
    with pytest.raises(StoredFileNotFound) as missing:
        await files.get("pod/photo.jpg")
    assert missing.value.status == 404
    with pytest.raises(StoredFileNotFound):
        await files.info("pod/photo.jpg")


@pytest.mark.parametrize(
    "key",
    [
        "../outside.jpg",
        "pod/../../outside.jpg",
        "/etc/passwd",
        "pod//photo.jpg",
        "pod/./photo.jpg",
        "pod\\photo.jpg",
        ".meta/pod/photo.jpg.json",
        "pod/photo.jpg/",
        "",
        "a" * 513,
        "pod/ph\x00oto.jpg",
    ],
)
async def test_a_key_that_could_leave_the_store_is_refused(tmp_path: Path, key: str) -> None:
    # given
    root = tmp_path / "files"
    files = store(root)

    # when / then
    with pytest.raises(InvalidFileKey) as refused:
        await files.put(key, JPEG, "image/jpeg")
    assert refused.value.field == "key"
    with pytest.raises(InvalidFileKey):
        await files.get(key)
    with pytest.raises(InvalidFileKey):
        await files.delete(key)
    assert everything_under(tmp_path) == []


async def test_a_symlink_planted_in_the_store_does_not_lead_out_of_it(tmp_path: Path) -> None:
    # given
    root = tmp_path / "files"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(b"not yours")
    (root / "pod").symlink_to(tmp_path)
    files = store(root)

    # when / then
    with pytest.raises(StoredFileNotFound):
        await files.get("pod/secret.txt")


async def test_a_file_over_the_size_limit_is_refused_and_not_written(tmp_path: Path) -> None:
    # given
    files = store(tmp_path, max_bytes=100)

    # when
    at_limit = await files.put("pod/exact.bin", b"x" * 100, "application/octet-stream")
    with pytest.raises(FileTooLarge) as refused:
        await files.put("pod/big.bin", b"x" * 101, "application/octet-stream")

    # then
    assert at_limit.size == 100
    assert (refused.value.status, refused.value.field) == (413, "file")
    assert refused.value.detail == "the file has 101 bytes; at most 100 are allowed"
    assert sorted(p.name for p in (tmp_path / "pod").iterdir()) == ["exact.bin"]


async def test_a_content_type_that_is_no_media_type_is_refused(tmp_path: Path) -> None:
    # given
    files = store(tmp_path)

    # when
    with pytest.raises(InvalidContentType) as refused:
        await files.put("pod/photo.jpg", JPEG, "image/jpeg\r\nX-Evil: 1")

    # then
    assert refused.value.field == "content_type"


async def test_a_link_carries_the_key_its_expiry_and_a_signature_that_verifies(tmp_path: Path) -> None:
    # given
    files = store(tmp_path)
    await files.put("pod/job_1/photo.jpg", JPEG, "image/jpeg")

    # when
    url = await files.url("pod/job_1/photo.jpg", timedelta(minutes=15))

    # then
    path, expires, signature = link_parts(url)
    assert url.startswith("https://doorstep.example/v1/dispatch/files/pod/job_1/photo.jpg?expires=")
    assert path == "/v1/dispatch/files/pod/job_1/photo.jpg"
    assert expires == int(NOW.timestamp()) + 900
    SIGNER.verify("pod/job_1/photo.jpg", expires, signature, now=NOW + timedelta(minutes=14, seconds=59))


async def test_a_link_is_refused_once_it_expired(tmp_path: Path) -> None:
    # given
    url = await store(tmp_path).url("pod/photo.jpg", timedelta(minutes=15))
    _, expires, signature = link_parts(url)

    # when
    with pytest.raises(FileLinkRefused) as refused:
        SIGNER.verify("pod/photo.jpg", expires, signature, now=NOW + timedelta(minutes=15))

    # then
    assert (refused.value.status, refused.value.detail) == (403, "the link has expired")


@pytest.mark.parametrize(
    ("key", "extend", "signer"),
    [
        ("pod/other.jpg", 0, SIGNER),  # another file
        ("pod/photo.jpg", 3600, SIGNER),  # a longer life
        ("pod/photo.jpg", 0, FileLinkSigner(b"another installation's secret key")),
    ],
)
async def test_a_tampered_link_is_refused(
    tmp_path: Path, key: str, extend: int, signer: FileLinkSigner
) -> None:
    # given
    url = await store(tmp_path).url("pod/photo.jpg", timedelta(minutes=15))
    _, expires, signature = link_parts(url)

    # when
    with pytest.raises(FileLinkRefused) as refused:
        signer.verify(key, expires + extend, signature, now=NOW)

    # then
    assert refused.value.detail == "the link's signature does not match"


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(days=8)])
async def test_a_link_lives_between_a_second_and_a_week(tmp_path: Path, lifetime: timedelta) -> None:
    # given
    files = store(tmp_path)

    # when
    with pytest.raises(InvalidInput) as refused:
        await files.url("pod/photo.jpg", lifetime)

    # then
    assert refused.value.field == "expires_in"


async def test_the_default_store_is_on_disk_under_the_data_dir_signed_with_the_secret_key(
    tmp_path: Path,
) -> None:
    # given
    settings = Settings(data_dir=tmp_path, secret_key="k" * 32, files_max_bytes=50)

    # when
    async with open_file_store(settings) as files:
        await files.put("pod/a.txt", b"hello", "text/plain")
        with pytest.raises(FileTooLarge):
            await files.put("pod/b.txt", b"x" * 51, "text/plain")
        url = await files.url("pod/a.txt", timedelta(minutes=1))

    # then
    assert (tmp_path / "files" / "pod" / "a.txt").read_bytes() == b"hello"
    _, expires, signature = link_parts(url)
    link_signer(settings).verify("pod/a.txt", expires, signature, now=datetime.now(UTC))
