"""The public compliance checker ``scim2-tester`` (through ``scim2-cli``) against a live gunicorn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import new_tenant
from tests.conftest import new_token

pytestmark = pytest.mark.compliance


def _scim2() -> str:
    candidate = Path(sys.executable).with_name("scim2")
    found = str(candidate) if candidate.exists() else shutil.which("scim2")
    assert found, "scim2-cli is a test dependency (pip install -e '.[dev]')"
    return found


def test_scim2_tester_reports_no_errors(live_server, storage):
    token = new_token(storage, new_tenant(storage))
    env = {**os.environ, "SCIM_CLI_HEADERS": f"Authorization: Bearer {token}", "NO_COLOR": "1",
           "COLUMNS": "200"}
    result = subprocess.run(
        [_scim2(), "--url", f"{live_server.url}/scim/v2", "test"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    failures = [line for line in output.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b", line)]
    assert result.returncode == 0 and not failures, output[-8000:]
    assert re.search(r"\bSUCCESS\b", output), output[-4000:]
