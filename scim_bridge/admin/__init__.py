"""Admin reconciliation (issue 6): org management, the reconciliation report and plans.

One set of services shared by the admin API (``http/admin/api.py``), the web console
(``http/admin/console.py``) and the CLI (``admin/commands.py``): no business rule lives in a view
or a command.
"""
