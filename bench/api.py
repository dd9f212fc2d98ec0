"""A small keep-alive SCIM client (one connection per thread) for seeding, probes and single timings."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

SCIM = "/scim/v2"
SCIM_MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status, parsed JSON body (or None), headers, seconds taken."""

    status: int
    body: Any
    headers: dict[str, str]
    seconds: float
    size: int


class Api:
    """Talk to one server on 127.0.0.1 with a bearer token, one keep-alive connection per thread."""

    def __init__(self, host: str, port: int, token: str | None = None, timeout: float = 120) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Reply:
        """Send one request (retrying once on a dropped keep-alive connection) and parse the JSON answer."""
        hdrs = {"Accept": SCIM_MEDIA_TYPE}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            hdrs["Content-Type"] = SCIM_MEDIA_TYPE
        hdrs.update(headers or {})
        for attempt in (1, 2):
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=hdrs)
                response = conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # gunicorn closes connections (sync workers, max_requests): send again on a new one.
                # Never on a timeout: the server may still be working on a non-idempotent request.
                self.close()
                if attempt == 2:
                    raise
                continue
            except (http.client.HTTPException, OSError):
                self.close()
                raise
            seconds = time.perf_counter() - started
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = None
            return Reply(response.status, parsed, dict(response.getheaders()), seconds, len(payload))
        raise AssertionError("unreachable")

    def scim(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        """Send a request under ``/scim/v2``."""
        return self.request(method, SCIM + path, body, headers)

    def token_request(self, client_id: str, client_secret: str, scope: str = "scim:read") -> Reply:
        """POST /oauth/token with the client credentials grant (RFC 6749 §4.4), Basic authentication."""
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        form = urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
        return self.request("POST", "/oauth/token", raw=form,
                            headers={"Authorization": f"Basic {basic}",
                                     "Content-Type": "application/x-www-form-urlencoded",
                                     "Accept": "application/json"})


def user_body(i: int) -> dict[str, Any]:
    """Return the SCIM body of seeded user number *i* (userName and externalId derive from *i*)."""
    given, family = f"Given{i % 997}", f"Family{i}"
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name(i),
        "externalId": external_id(i),
        "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
        "displayName": f"{given} {family}",
        "active": True,
        "emails": [{"value": user_name(i), "type": "work", "primary": True}],
    }


def user_name(i: int) -> str:
    """Return the userName of seeded user *i*."""
    return f"user{i:07d}@bench.example"


def external_id(i: int) -> str:
    """Return the externalId of seeded user *i*."""
    return f"ext-{i:07d}"


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """Return a PatchOp request (RFC 7644 §3.5.2)."""
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def endpoint_missing(reply: Reply) -> bool:
    """Tell whether a probe answer means the route does not exist (yet)."""
    return reply.status in (404, 405)
