"""The file-storage port (proof-of-delivery photos and signatures), its keys and its signed links.

Keys are relative paths of plain segments (`pod/<tenant>/<job>/photo-1.jpg`); a key that could escape
its store (`..`, an absolute path, a backslash) is refused before any adapter sees it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote, urlencode

from doorstep.kernel.errors import Forbidden, InvalidInput, NotFound

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")  # no leading dot: no `..`, no hidden files
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
FILE_LINK_PATH = "/v1/dispatch/files/"


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    content_type: str


class FileStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> StoredFile: ...

    async def get(self, key: str) -> bytes: ...

    async def info(self, key: str) -> StoredFile: ...

    async def url(self, key: str, expires_in: timedelta) -> str:
        """A link anyone holding it may use to read the file until it expires."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the file; removing one that is not there is not an error."""
        ...


class InvalidFileKey(InvalidInput):
    slug = "invalid-file-key"
    title = "The file key is not valid"


class InvalidContentType(InvalidInput):
    slug = "invalid-content-type"
    title = "The content type is not valid"


class FileTooLarge(InvalidInput):
    slug = "file-too-large"
    title = "The file is too large"
    status = 413


class StoredFileNotFound(NotFound):
    slug = "file-not-found"
    title = "File not found"


class FileLinkRefused(Forbidden):
    slug = "file-link-refused"
    title = "The file link is expired or not valid"


def check_key(key: str) -> str:
    segments = key.split("/")
    if not key or len(key) > MAX_KEY_LENGTH or not all(_SEGMENT.match(segment) for segment in segments):
        raise InvalidFileKey(
            "a file key is a relative path of segments made of letters, digits, `.`, `_` and `-`, not "
            f"starting with `.`, at most {MAX_KEY_LENGTH} characters",
            field="key",
        )
    return key


def check_upload(key: str, data: bytes, content_type: str, *, max_bytes: int) -> None:
    check_key(key)
    if len(data) > max_bytes:
        raise FileTooLarge(f"the file has {len(data)} bytes; at most {max_bytes} are allowed", field="file")
    if not _CONTENT_TYPE.match(content_type):
        raise InvalidContentType(f"{content_type!r} is not a media type", field="content_type")


def link_lifetime(expires_in: timedelta) -> int:
    seconds = int(expires_in.total_seconds())
    if not 1 <= seconds <= 7 * 24 * 3600:
        raise InvalidInput("a file link lives between 1 second and 7 days", field="expires_in")
    return seconds


@dataclass(frozen=True, slots=True)
class FileLinkSigner:
    """HMAC-SHA256 over the key and the expiry: the API serves a file only for a link it signed."""

    secret: bytes

    def sign(self, key: str, expires_at: int) -> str:
        message = f"{key}\n{expires_at}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, key: str, expires_at: int, signature: str, *, now: datetime) -> None:
        if not hmac.compare_digest(self.sign(key, expires_at).encode(), signature.encode()):
            raise FileLinkRefused("the link's signature does not match")
        if now.timestamp() >= expires_at:
            raise FileLinkRefused("the link has expired")

    def link(self, base_url: str, key: str, expires_at: int) -> str:
        query = urlencode({"expires": expires_at, "signature": self.sign(key, expires_at)})
        return f"{base_url.rstrip('/')}{FILE_LINK_PATH}{quote(key, safe='/')}?{query}"
