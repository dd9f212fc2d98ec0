"""The admin surfaces: the JSON admin API (``/admin/api/v1``) and the web console (``/admin``)."""
