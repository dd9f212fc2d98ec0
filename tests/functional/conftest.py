"""Fixtures shared by the functional tests of one feature, registered for the whole directory."""

from tests.functional.admin_support import admin_tenancy  # noqa: F401  (admin reconciliation)
from tests.functional.orgs_support import orgs_app  # noqa: F401  (Infinity organizations)
from tests.functional.orgs_support import tenancy  # noqa: F401
