"""Proof-of-delivery files: a driver uploads a photo or a signature, then names its key when delivering.

Files are stored through the `FileStore` port (local disk by default, S3-compatible storage), under the
tenant's own prefix. Links are time-limited: the local store's links come back to
`GET /v1/dispatch/files/{tenant}/{name}`, which serves a file only with a valid signature (no credential:
the link is the credential, like an S3 presigned URL, which the S3 store gives instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from doorstep.infra.file_storage import link_signer, open_file_store
from doorstep.kernel.auth import PUBLIC, Principal, Requires
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.files import FileLinkSigner, FileStore, FileTooLarge, check_key
from doorstep.kernel.ids import new_id
from doorstep.kernel.settings import Settings

# What a phone camera or a signature pad gives; nothing a browser would run when it opens the link.
CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
LINK_LIFETIME = timedelta(minutes=15)
STATE = "dispatch_files"

router = APIRouter(prefix="/v1/dispatch", tags=["dispatch files"])
Executes = Annotated[Principal, Depends(Requires("dispatch.execute"))]


@dataclass
class Files:
    store: FileStore
    signer: FileLinkSigner
    max_bytes: int


def files_router(settings: Settings) -> APIRouter:
    """A router without routes whose lifespan opens the file store while the app runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signer = link_signer(settings)
        async with open_file_store(settings, signer=signer) as store:
            setattr(app.state, STATE, Files(store=store, signer=signer, max_bytes=settings.files_max_bytes))
            yield

    return APIRouter(lifespan=lifespan)


def _files(request: Request) -> Files:
    files = getattr(request.app.state, STATE, None)
    if not isinstance(files, Files):
        raise RuntimeError("the dispatch file store is not open: the app's lifespan did not run")
    return files


Store = Annotated[Files, Depends(_files)]


class UploadedFile(BaseModel):
    key: str
    size: int
    content_type: str
    url: str


@router.post(
    "/files",
    status_code=201,
    summary="Upload a proof-of-delivery photo or signature (JPEG, PNG or WebP); name its key when delivering",
)
async def upload_file(file: UploadFile, principal: Executes, files: Store) -> UploadedFile:
    content_type = (file.content_type or "").split(";")[0].strip().lower()
    extension = CONTENT_TYPES.get(content_type)
    if extension is None:
        raise InvalidInput(
            f"{content_type or 'no content type'!r} is not one of {', '.join(CONTENT_TYPES)}",
            field="file",
            location="body",
        )
    data = await file.read(files.max_bytes + 1)
    if len(data) > files.max_bytes:
        raise FileTooLarge(f"the file has more than {files.max_bytes} bytes", field="file", location="body")
    if not data:
        raise InvalidInput("the file is empty", field="file", location="body")
    key = f"{principal.tenant_id}/{new_id()}.{extension}"
    stored = await files.store.put(key, data, content_type)
    return UploadedFile(
        key=stored.key,
        size=stored.size,
        content_type=stored.content_type,
        url=await files.store.url(stored.key, LINK_LIFETIME),
    )


@router.get(
    "/files/{tenant_id}/{name}",
    summary="A file by its signed, time-limited link (no credential: the signature is checked)",
    dependencies=[PUBLIC],
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 403: {"description": "Expired or not signed by Doorstep."}},
)
async def serve_file(
    tenant_id: str,
    name: str,
    files: Store,
    expires: Annotated[int, Query(ge=0)],
    signature: Annotated[str, Query(min_length=1, max_length=100)],
) -> Response:
    key = check_key(f"{tenant_id}/{name}")
    files.signer.verify(key, expires, signature, now=utcnow())
    info = await files.store.info(key)
    data = await files.store.get(key)
    return Response(
        content=data,
        media_type=info.content_type,
        headers={
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
