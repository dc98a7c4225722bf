"""The README's report screenshot (docs/report.png), made the way a user makes a report.

``alblake sample`` (fixed seed) -> ``alblake ingest`` -> ``alblake report``, then headless Chromium (the browser the
report's test uses) draws the page's top into a PNG. Run it again after changing the report's look:

    .venv/bin/python scripts/report_screenshot.py [--out docs/report.png] [--width 1280] [--height 1500]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("needs chromium on PATH (make deps installs it)")


def alblake(work: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "alblake", *args], check=True, stdout=subprocess.DEVNULL, cwd=work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        alblake(work, "sample", "--out", "logs", "--files", "24", "--lines", "3000", "--seed", "7")
        alblake(work, "ingest", "logs", "--lake", "lake", "--quiet")
        alblake(work, "report", "--lake", "lake", "--out", "report.html")
        subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-extensions",
             "--force-device-scale-factor=1", f"--user-data-dir={work / 'profile'}",
             f"--window-size={args.width},{args.height}", f"--screenshot={args.out.resolve()}",
             (work / "report.html").as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
