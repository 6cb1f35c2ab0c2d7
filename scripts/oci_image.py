"""Write a root filesystem as a single-layer OCI image archive, with no
registry and no container engine: the layout that `ctr images import` reads
(oci-layout, index.json, blobs/sha256/{layer,config,manifest}).

Usage: python3 scripts/oci_image.py ROOTFS OUT.tar NAME [--env K=V ...]
       [--entrypoint JSON] [--cmd JSON] [--user U] [--workdir DIR]

The layer is an uncompressed tar of ROOTFS (numeric owners, no mtimes newer
than the rootfs's own), so the same rootfs gives the same image digest.
NAME is the full reference (`lab.local/chaosray-base:<tag>`), written as the
index annotation `io.containerd.image.name` that containerd names the image
by on import.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _layer(rootfs: Path, out: Path) -> tuple[str, int]:
    """Tar ``rootfs`` into ``out`` (tarfile sorts each directory, keeps hard
    links, devices and numeric owners); its sha256 and size."""

    def numeric(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(rootfs), arcname=".", filter=numeric)
    digest = hashlib.sha256()
    with open(out, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), out.stat().st_size


def _blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return digest, len(data)


def write_image(rootfs: Path, out: Path, name: str, config: dict[str, Any]) -> str:
    """Write the archive; return the manifest digest."""
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        layout = Path(work)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        staged = layout / "layer.tar"
        layer_digest, layer_size = _layer(rootfs, staged)
        os.replace(staged, blobs / layer_digest)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            "history": [{"created_by": "scripts/oci_image.py", "comment": "one layer"}],
        }
        config_digest, config_size = _blob(blobs, json.dumps(image_config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": CONFIG,
                "digest": f"sha256:{config_digest}",
                "size": config_size,
            },
            "layers": [
                {"mediaType": LAYER, "digest": f"sha256:{layer_digest}", "size": layer_size}
            ],
        }
        manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": f"sha256:{manifest_digest}",
                    "size": manifest_size,
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
        (layout / "index.json").write_text(json.dumps(index))
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for entry in ("oci-layout", "index.json", "blobs"):
                tar.add(layout / entry, arcname=entry)
        os.replace(partial, out)
    return f"sha256:{manifest_digest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--entrypoint", type=json.loads)
    parser.add_argument("--cmd", type=json.loads)
    parser.add_argument("--user")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    config: dict[str, Any] = {"Env": args.env}
    for key, value in (("Entrypoint", args.entrypoint), ("Cmd", args.cmd),
                       ("User", args.user), ("WorkingDir", args.workdir)):  # fmt: skip
        if value is not None:
            config[key] = value
    print(write_image(args.rootfs, args.out, args.name, config))


if __name__ == "__main__":
    main()
