#!/usr/bin/env python3
"""Zips each function `sam build` produced, as Lambda receives it, and reports the sizes.

    scripts/lambda-sizes.py .aws-sam/build

For every <LogicalId>/bootstrap under the build dir: the executable's size and its deployment
zip's (deflate, level 9, the same archive `sam package` uploads), written to stdout and to
<build dir>/lambda-sizes.json. Fails when a zip is over Lambda's 50 MB direct-upload limit
(Lambda quotas: "Deployment package (.zip file archive) size: 50 MB (zipped, when uploaded
through the Lambda API or SDKs)"), or when no function was built.
"""
from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024


def zipped_size(bootstrap: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16  # executable, as Lambda needs
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, bootstrap.read_bytes(), compresslevel=9)
    return len(buffer.getvalue())


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    build = Path(sys.argv[1])
    rows = []
    for bootstrap in sorted(build.glob("*/bootstrap")):
        rows.append(
            {
                "function": bootstrap.parent.name,
                "binaryBytes": bootstrap.stat().st_size,
                "zipBytes": zipped_size(bootstrap),
            }
        )
    if not rows:
        print(f"lambda-sizes: no <LogicalId>/bootstrap under {build}: did `sam build` run?", file=sys.stderr)
        return 1
    mb = lambda n: f"{n / 1024 / 1024:.2f} MB"  # noqa: E731
    print(f"{'function':<34} {'binary':>10} {'zip':>10}")
    for row in rows:
        print(f"{row['function']:<34} {mb(row['binaryBytes']):>10} {mb(row['zipBytes']):>10}")
    (build / "lambda-sizes.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    over = [r["function"] for r in rows if r["zipBytes"] > LAMBDA_ZIP_LIMIT]
    if over:
        print(f"lambda-sizes: over Lambda's 50 MB zip limit: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
