"""The README's curl walk-through against a real gunicorn (3 workers): token, SCIM calls, revocation.

Revocation and expiry are checked on every request against the database, so a revoked token is
refused by every worker at once; many requests after the revocation make sure all workers saw it.
"""

from __future__ import annotations

import json
import subprocess
import uuid

from click.testing import CliRunner

from scim_bridge.cli import main


def curl(*args: str) -> tuple[int, str]:
    """Run curl; return the HTTP status and the body."""
    result = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                            timeout=30, check=True)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def test_readme_walkthrough_with_curl(live_server, database_url, monkeypatch):
    monkeypatch.setenv("SCIM_BRIDGE_DATABASE_URL", database_url)
    runner = CliRunner()
    slug = f"live-{uuid.uuid4().hex[:8]}"
    assert runner.invoke(main, ["tenant", "create", slug]).exit_code == 0
    created = runner.invoke(main, ["client", "create", "--tenant", slug, "--name", "Entra ID",
                                   "--scope", "scim:read scim:write"])
    creds = json.loads(created.stdout)
    url = live_server.url

    # README: "Get a token" (client_secret_basic with curl -u).
    status, body = curl("-u", f"{creds['client_id']}:{creds['client_secret']}", "-d", "grant_type=client_credentials",
                        f"{url}/oauth/token")
    assert status == 200, body
    token = json.loads(body)["access_token"]
    auth = ["-H", f"Authorization: Bearer {token}"]

    # README: "Call SCIM".
    status, body = curl(*auth, f"{url}/scim/v2/Users")
    assert status == 200 and json.loads(body)["totalResults"] == 0
    status, body = curl(*auth, "-H", "Content-Type: application/scim+json", "-d",
                        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com"}',
                        f"{url}/scim/v2/Users")
    assert status == 201, body
    for _ in range(6):  # every worker serves the token
        assert curl(*auth, f"{url}/scim/v2/Users")[0] == 200

    # client_secret_post works the same.
    status, body = curl("-d", "grant_type=client_credentials", "-d", f"client_id={creds['client_id']}",
                        "-d", f"client_secret={creds['client_secret']}", f"{url}/oauth/token")
    assert status == 200, body

    # README: "Revoke" — refused at once by every worker.
    status, _ = curl("-u", f"{creds['client_id']}:{creds['client_secret']}", "-d", f"token={token}",
                     f"{url}/oauth/revoke")
    assert status == 200
    for _ in range(12):
        status, body = curl(*auth, f"{url}/scim/v2/Users")
        assert status == 401 and json.loads(body)["status"] == "401"

    # A wrong secret: 401 invalid_client with a Basic challenge.
    result = subprocess.run(["curl", "-sS", "-i", "-u", f"{creds['client_id']}:sbs_wrong", "-d",
                             "grant_type=client_credentials", f"{url}/oauth/token"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert "401" in result.stdout.splitlines()[0]
    assert 'WWW-Authenticate: Basic realm="scim-bridge"' in result.stdout
