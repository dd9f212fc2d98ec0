"""Load benchmark of scim-bridge against the bare Flask + gunicorn ceiling (``make bench``; docs/benchmarks.md)."""
