"""gunicorn settings of the ceiling app: exactly the production ``gunicorn.conf.py``, minus its hook.

The production ``post_fork`` disposes the service's database engine; the ceiling has none, and
importing the service there would only add memory to its workers.
"""

import runpy
from pathlib import Path

_production = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({k: v for k, v in _production.items() if not k.startswith("_") and k != "post_fork"})
