"""Prove the trimmed layer works: run with python3.13 on an x86_64 build of the same trimmed layout.

    python3.13 layers/alblake/importcheck.py LAYER_SITE RUNTIME_SITE

LAYER_SITE is the layer's python/ dir; RUNTIME_SITE holds boto3/botocore (what the Lambda runtime provides).
Imports everything the function imports, converts a generated sample log, reads the Parquet back, and
reports cold import times. Exits non-zero on any failure. Uses only the stdlib plus the layer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "ingest"

MODULES = [
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.csv",
    "pyarrow.parquet",
    "numpy",
    "isal.isal_zlib",
    "aws_xray_sdk.core",
    "aws_lambda_powertools",
    "alblake.native",
    "alblake.convert.core",
    "alblake.service.ingest",
]

CONVERT = r"""
import gzip, tempfile, sys
from pathlib import Path
import pyarrow.parquet as pq
from alblake.ingest.core import ingest_object
from alblake.lake.generational import open_local_lake
from alblake.sample import write_sample_logs
from alblake import native, parse
assert native.available() and parse.DEFAULT_ENGINE == "native", "the layer lacks the native tokenizer"
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    [src] = write_sample_logs(d / "in", files=1, lines_per_file=5000, seed=1)
    lake = d / "lake"
    result = ingest_object(lambda: src.open("rb"), str(src), open_local_lake(lake))
    rows = sum(pq.read_table(p).num_rows for p in (lake / "alb_logs").rglob("*.parquet"))  # the rollup has its own
    assert rows == result.rows > 4900, (rows, result.rows)
    print(f"convert ok: {result.rows} rows, {result.quarantined} quarantined, {len(result.commit.written)} files")
"""

APP_IMPORT = r"""
import time
t = time.perf_counter()
import app
print(f"{(time.perf_counter() - t) * 1000:.0f}")
"""


def run(python: str, code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"FAILED: {code.strip().splitlines()[0]}")
    return proc.stdout.strip()


def main() -> None:
    layer_site, runtime_site = sys.argv[1], sys.argv[2]
    python = sys.executable
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Lambda: function code first, then the layer (/opt/python), then the runtime's boto3.
        "PYTHONPATH": os.pathsep.join([str(FUNCTION_DIR), layer_site, runtime_site]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # /opt is read-only in Lambda: measure with the shipped .pyc only
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAKE_BUCKET": "lake",
        "GLUE_DATABASE": "db",
        "POWERTOOLS_SERVICE_NAME": "alblake-ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
        "AWS_LAMBDA_FUNCTION_NAME": "alblake-ingest",  # makes Tracer load the X-Ray SDK as in Lambda
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    print(f"python: {run(python, 'import sys; print(sys.version.split()[0])', env)}")
    for module in MODULES:
        where = run(python, f"import {module} as m; print(m.__file__)", env)
        if not where.startswith(layer_site) and "alblake" not in module:
            raise SystemExit(f"FAILED: {module} imported from outside the layer: {where}")
    print(f"imports ok: {', '.join(MODULES)}, app")
    print(run(python, CONVERT, env))
    samples = sorted(int(run(python, APP_IMPORT, env)) for _ in range(5))
    print(f"cold `import app` (handler module + alblake + pyarrow + powertools): median {samples[2]} ms, "
          f"min {samples[0]} ms, max {samples[-1]} ms over 5 fresh interpreters")
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "importtime.txt"
        subprocess.run([python, "-X", "importtime", "-c", "import app"], env=env, stderr=log.open("w"),
                       check=True)
        top = []
        for line in log.read_text().splitlines()[1:]:
            parts = line.split("|")
            # children of `app` (indented by one level under it)
            if len(parts) == 3 and parts[2].startswith("   ") and not parts[2].startswith("    "):
                top.append((int(parts[1]), parts[2].strip()))
        top.sort(reverse=True)
        print("imports under app by cumulative time (us): " + ", ".join(f"{m}={t}" for t, m in top[:6]))


if __name__ == "__main__":
    main()
