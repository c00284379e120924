"""File stores: local disk under the data dir (the default) and S3-compatible object storage."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from doorstep.kernel.clock import utcnow
from doorstep.kernel.files import (
    FileLinkSigner,
    FileStore,
    StoredFile,
    StoredFileNotFound,
    check_key,
    check_upload,
    link_lifetime,
)
from doorstep.kernel.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# Content types live beside the files in a tree no key can reach: keys never start a segment with `.`.
_META_DIR = ".meta"


class LocalFileStore:
    """Files on disk; `url` gives a link the API serves after `FileLinkSigner.verify`."""

    def __init__(
        self,
        root: Path,
        *,
        signer: FileLinkSigner,
        base_url: str,
        max_bytes: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.root = root.resolve()
        self.signer = signer
        self.base_url = base_url
        self.max_bytes = max_bytes
        self.clock = clock

    async def put(self, key: str, data: bytes, content_type: str) -> StoredFile:
        check_upload(key, data, content_type, max_bytes=self.max_bytes)
        stored = StoredFile(key=key, size=len(data), content_type=content_type)
        await asyncio.to_thread(self._write, key, data, content_type)
        return stored

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StoredFileNotFound(f"no file {key}") from None

    async def info(self, key: str) -> StoredFile:
        path, meta = self._path(key), self._meta_path(key)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
            content_type = json.loads(await asyncio.to_thread(meta.read_text))["content_type"]
        except (FileNotFoundError, NotADirectoryError):
            raise StoredFileNotFound(f"no file {key}") from None
        return StoredFile(key=key, size=size, content_type=str(content_type))

    async def url(self, key: str, expires_in: timedelta) -> str:
        check_key(key)
        expires_at = int(self.clock().timestamp()) + link_lifetime(expires_in)
        return self.signer.link(self.base_url, key, expires_at)

    async def delete(self, key: str) -> None:
        path, meta = self._path(key), self._meta_path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await asyncio.to_thread(meta.unlink, missing_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # check_key already refuses `..`; this also catches a symlink planted inside the store.
        if not path.is_relative_to(self.root):
            raise StoredFileNotFound(f"no file {key}")
        return path

    def _meta_path(self, key: str) -> Path:
        return self.root / _META_DIR / f"{check_key(key)}.json"

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        _write_atomically(self._path(key), data)
        _write_atomically(self._meta_path(key), json.dumps({"content_type": content_type}).encode())


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class S3FileStore:
    """Objects in an S3-compatible bucket; `url` is a presigned GET the storage server itself checks."""

    def __init__(self, client: S3Client, *, bucket: str, max_bytes: int) -> None:
        self.client = client
        self.bucket = bucket
        self.max_bytes = max_bytes

    async def put(self, key: str, data: bytes, content_type: str) -> StoredFile:
        check_upload(key, data, content_type, max_bytes=self.max_bytes)
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return StoredFile(key=key, size=len(data), content_type=content_type)

    async def get(self, key: str) -> bytes:
        check_key(key)
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            raise _not_found_or(error, key) from None
        async with response["Body"] as body:
            return await body.read()

    async def info(self, key: str) -> StoredFile:
        check_key(key)
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            raise _not_found_or(error, key) from None
        return StoredFile(key=key, size=head["ContentLength"], content_type=head["ContentType"])

    async def url(self, key: str, expires_in: timedelta) -> str:
        check_key(key)
        return await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=link_lifetime(expires_in),
        )

    async def delete(self, key: str) -> None:
        check_key(key)
        await self.client.delete_object(Bucket=self.bucket, Key=key)


def _not_found_or(error: ClientError, key: str) -> Exception:
    code = error.response.get("Error", {}).get("Code")
    if code in {"NoSuchKey", "404", "NotFound"}:
        return StoredFileNotFound(f"no file {key}")
    return error


def link_signer(settings: Settings) -> FileLinkSigner:
    if settings.secret_key is None:
        return FileLinkSigner(secrets.token_bytes(32))
    return FileLinkSigner(settings.secret_key.get_secret_value().encode())


@asynccontextmanager
async def open_file_store(
    settings: Settings, *, signer: FileLinkSigner | None = None
) -> AsyncIterator[FileStore]:
    """The store the settings choose; an S3 client (credentials from the usual AWS variables) is closed
    on exit. The local store signs its links with `signer` (the one that serves them must verify)."""
    if settings.files_backend == "local":
        yield LocalFileStore(
            settings.data_dir / "files",
            signer=signer or link_signer(settings),
            base_url=settings.public_url,
            max_bytes=settings.files_max_bytes,
        )
        return
    if not settings.files_s3_bucket:
        raise ValueError("DOORSTEP_FILES_S3_BUCKET must be set when DOORSTEP_FILES_BACKEND=s3")
    async with get_session().create_client(
        "s3", endpoint_url=settings.files_s3_endpoint_url, region_name=settings.files_s3_region
    ) as client:
        yield S3FileStore(client, bucket=settings.files_s3_bucket, max_bytes=settings.files_max_bytes)
