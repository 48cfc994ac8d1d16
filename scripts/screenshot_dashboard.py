"""Regenerate docs/dashboard.png: the ticket page of a pending ticket, with plan, findings and preview.

The browser test that signs in and approves a ticket saves the page just before approving when
AGENT_TICKET_SCREENSHOT names a file, so the picture always shows what the tests check.

    .venv/bin/python scripts/screenshot_dashboard.py [output.png]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/dashboard/test_browser.py::test_approver_reviews_approves_and_watches_it_finish_without_reload"


def main() -> int:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png").resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    env = {**os.environ, "AGENT_TICKET_SCREENSHOT": str(output)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT, env=env)
    if result.returncode != 0 or not output.exists():
        print(f"no screenshot written (pytest exited {result.returncode})", file=sys.stderr)
        return result.returncode or 1
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
