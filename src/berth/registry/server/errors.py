"""The distribution spec's error codes, their HTTP statuses, and the JSON body they travel in."""
from __future__ import annotations

import json
from typing import Any

STATUS = {
    "BLOB_UNKNOWN": 404, "BLOB_UPLOAD_INVALID": 400, "BLOB_UPLOAD_UNKNOWN": 404, "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400, "MANIFEST_INVALID": 400, "MANIFEST_UNKNOWN": 404, "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404, "SIZE_INVALID": 400, "TAG_INVALID": 400, "UNAUTHORIZED": 401, "DENIED": 403,
    "UNSUPPORTED": 405, "TOOMANYREQUESTS": 429, "RANGE_INVALID": 416, "PAGINATION_NUMBER_INVALID": 400,
}
MESSAGES = {
    "BLOB_UNKNOWN": "blob unknown to registry", "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "blob unknown to registry", "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown", "NAME_INVALID": "invalid repository name",
    "NAME_UNKNOWN": "repository name not known to registry", "SIZE_INVALID": "provided length did not match content length",
    "TAG_INVALID": "manifest tag did not match URI", "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied", "UNSUPPORTED": "The operation is unsupported.",
    "TOOMANYREQUESTS": "too many requests", "RANGE_INVALID": "invalid content range",
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
}


class RegistryError(Exception):
    """One spec error; ``status`` overrides the code's usual HTTP status (e.g. 413 for SIZE_INVALID)."""

    def __init__(self, code: str, message: str = "", detail: Any = None, status: int = 0,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or MESSAGES[code])
        self.code, self.message, self.detail = code, message or MESSAGES[code], detail
        self.status = status or STATUS[code]
        self.headers = headers or {}

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return json.dumps({"errors": [err]}).encode()
