"""Print the Markdown tables of saved results: ``python -m bench.report bench/results/<timestamp>.json ...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.run import markdown


def main(argv: list[str]) -> int:
    """Render each results file given on the command line."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name in argv:
        print(markdown(json.loads(Path(name).read_text())))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
