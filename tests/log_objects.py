"""ALB-named log objects for tests: the AWS-documented example entry with varied times and request paths, one
object per node and hour, named as ALB names them."""

from __future__ import annotations

import gzip
from pathlib import Path

DOCUMENTED = (Path(__file__).parent / "data" / "aws_documented_examples.log").read_text().splitlines()[0]


def object_lines(node: int, hour: int, count: int) -> list[str]:
    """``count`` lines of one node in ``hour`` (the AWS-documented example entry, times and paths varied)."""
    lines = []
    for i in range(count):
        time = f"2018-07-02T{hour:02d}:{i % 60:02d}:{node:02d}.000000Z"
        line = DOCUMENTED.replace("2018-07-02T22:23:00.186641Z", time)
        lines.append(line.replace("www.example.com:80/ ", f"www.example.com:80/n{node}/h{hour}/l{i} "))
    return lines


def write_objects(folder: Path, nodes: range, hours: tuple[int, ...], count: int) -> int:
    """One ALB-named object per node and hour; returns the number of lines."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for hour in hours:
        for node in nodes:
            name = (
                "123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer.50dc6c495c0c9188_"
                f"20180702T{hour:02d}05Z_10.0.{node}.1_{node:08x}.log.gz"
            )
            lines = object_lines(node, hour, count)
            (folder / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
            written += len(lines)
    return written


