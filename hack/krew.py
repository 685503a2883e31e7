"""Build the krew archive of the plugin and keep plugins/modelrelease.yaml's sha256 true.

    python -m hack.krew            # write dist/kubectl-modelrelease.tar.gz, print its sha256
    python -m hack.krew --check    # fail when the manifest's sha256 is not the archive's

The archive is built byte-for-byte reproducibly (fixed order, times, owners, gzip
header), so the manifest's checksum can be checked without a release.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "plugins" / "krew"
MANIFEST = ROOT / "plugins" / "modelrelease.yaml"
ARCHIVE = ROOT / "dist" / "kubectl-modelrelease.tar.gz"


def archive_bytes() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(SOURCES.iterdir()):
            info = tarfile.TarInfo(path.name)
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.mtime = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def manifest_sha256() -> str:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return str(manifest["spec"]["platforms"][0]["sha256"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the manifest")
    args = parser.parse_args()
    data = archive_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        if digest != manifest_sha256():
            print(
                f"plugins/modelrelease.yaml has sha256 {manifest_sha256()}, the archive is "
                f"{digest}; run python -m hack.krew and update the manifest",
                file=sys.stderr,
            )
            return 1
        return 0
    ARCHIVE.parent.mkdir(exist_ok=True)
    ARCHIVE.write_bytes(data)
    print(f"{ARCHIVE.relative_to(ROOT)} sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
