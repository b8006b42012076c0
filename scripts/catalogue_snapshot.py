"""Write the compact catalogue snapshot of one genai-prices version (for `costproxy prices
diff`, which compares the installed catalogue with the version before it, offline).

    python scripts/catalogue_snapshot.py 0.2.2                # pip downloads the wheel
    python scripts/catalogue_snapshot.py --wheel genai_prices-0.2.2-py3-none-any.whl

Writes proxy/data/catalogue-previous.json.gz by default (-o to change). Run it when the
genai-prices pin moves: with the version just before the new minimum. The wheel is pure
Python; it is unpacked into a temporary directory and dumped in a separate interpreter
(so the installed version is not disturbed) by `python -m proxy.accounting.catalogue_dump`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.accounting.catalogue_dump import write_dump  # noqa: E402

DEFAULT_OUT = REPO / "proxy" / "data" / "catalogue-previous.json.gz"
# Versions 0.0.x imported httpx (not httpx2) at import time without using it offline.
_HTTPX_STUB = (
    "class Timeout:\n    def __init__(self, *a, **k): pass\n\n"
    "def get(*a, **k):\n    raise RuntimeError('offline')\n"
)


def download(version: str, directory: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         f"genai-prices=={version}", "-d", str(directory)],
        check=True,
    )  # fmt: skip
    [wheel] = directory.glob("genai_prices-*.whl")
    return wheel


def dump_wheel(wheel: Path, directory: Path) -> dict:
    unpacked = directory / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    (unpacked / "httpx.py").write_text(_HTTPX_STUB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(unpacked), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-m", "proxy.accounting.catalogue_dump"],
        check=True,
        capture_output=True,
        env=env,
        cwd=directory,
    )
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="the genai-prices version to dump")
    parser.add_argument("--wheel", type=Path, help="a downloaded wheel instead of a version")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if (args.version is None) == (args.wheel is None):
        parser.error("give a version or --wheel")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version, Path(tmp))
        data = dump_wheel(wheel.resolve(), Path(tmp))
    write_dump(data, str(args.output))
    print(f"{args.output}: genai-prices {data['version']}, {len(data['models'])} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
