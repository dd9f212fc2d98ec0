"""The ceiling of the stack: bare Flask under the same gunicorn settings, no storage, no auth.

Every method on every path answers 200 with the same SCIM user, after reading the request body,
so that the benchmark can replay exactly the requests it sends to the service (same paths, same
bodies, same headers) and the only difference is the work the service does.

Served with ``gunicorn -c bench/gunicorn_ceiling.conf.py bench.ceiling:app``.
"""

from __future__ import annotations

import json

from flask import Flask
from flask import Response
from flask import request

SCIM_MEDIA_TYPE = "application/scim+json"

# What GET /Users/{id} of the service returns for a seeded user (the same attributes and shape).
FIXED_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "ext-0000001",
    "userName": "user0000001@bench.example",
    "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Barbara Jensen",
    "active": True,
    "emails": [{"value": "user0000001@bench.example", "type": "work", "primary": True}],
    "groups": [],
    "meta": {
        "resourceType": "User",
        "created": "2026-01-01T00:00:00+00:00",
        "lastModified": "2026-01-01T00:00:00+00:00",
        "location": "http://127.0.0.1:8000/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
        "version": 'W/"1"',
    },
}
BODY = json.dumps(FIXED_USER, separators=(",", ":"))
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=METHODS)
@app.route("/<path:path>", methods=METHODS)
def fixed_user(path: str) -> Response:
    """Read the body (as the service must) and return the fixed user."""
    request.get_data()
    response = Response(BODY, status=200, mimetype=SCIM_MEDIA_TYPE)
    response.headers["ETag"] = 'W/"1"'
    return response
