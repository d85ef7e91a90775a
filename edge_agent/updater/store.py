"""The on-device model store: ``<store>/<name>/<version>/`` (manifest.json + model + golden).

A version directory appears only by an atomic rename of a fully written, fsynced temporary directory,
so a directory that exists is complete. ``state.json`` records which version is committed (active),
which one ran before it (to revert to), an open trial and offers that already failed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from edge_agent.updater.fsutil import fsync_dir, read_json, write_json_atomic
from shared.manifest import MANIFEST_FILENAME, ManifestError, ModelManifest, load_manifest, parse_manifest
from shared.rollout import bundle_members

MAX_BUNDLE_RATIO = 20  # refuse zip bombs: unpacked size at most this times the bundle size


class StoreError(RuntimeError):
    """An artifact that cannot be installed; the message is the reason reported to the hub."""


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.partial_dir = self.root / ".partial"
        self.state_path = self.root / "state.json"

    # ------------------------------------------------------------------------------------ layout
    def version_dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    def has(self, name: str, version: str, sha256: str | None = None) -> bool:
        """True when that version is installed and intact (its model file matches its manifest)."""
        folder = self.version_dir(name, version)
        if not (folder / MANIFEST_FILENAME).exists():
            return False
        try:
            manifest, _ = load_manifest(folder)
        except ManifestError:
            return False
        bundle_sha = read_json(folder / ".bundle.json", {}).get("sha256")
        return sha256 is None or bundle_sha == sha256 or manifest.sha256 == sha256

    # ------------------------------------------------------------------------------------ install
    def install(self, bundle_path: Path, manifest: dict[str, Any], bundle_sha256: str) -> Path:
        """Unpack a verified bundle into its version directory (temp dir, fsync, rename)."""
        parsed: ModelManifest = parse_manifest(manifest, source="offer manifest")
        final = self.version_dir(parsed.name, parsed.version)
        if self.has(parsed.name, parsed.version, bundle_sha256):
            return final
        members = bundle_members(manifest)
        tmp = final.parent / f".tmp-{parsed.version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._unpack(bundle_path, members, tmp)
            (tmp / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2))
            (tmp / ".bundle.json").write_text(json.dumps({"sha256": bundle_sha256}))
            for path in tmp.iterdir():
                _fsync_file(path)
            fsync_dir(tmp)
            try:
                load_manifest(tmp)  # the model file must match the signed manifest's sha256 and size
            except ManifestError as exc:
                raise StoreError(f"bundle content does not match manifest: {exc}") from None
            if final.exists():  # a broken leftover of the same version: replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(final.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    @staticmethod
    def _unpack(bundle_path: Path, members: list[str], into: Path) -> None:
        try:
            with zipfile.ZipFile(bundle_path) as bundle:
                names = bundle.namelist()
                if sorted(names) != sorted(members):
                    raise StoreError(f"bundle holds {names}, manifest expects {members}")
                unpacked = sum(info.file_size for info in bundle.infolist())
                if unpacked > MAX_BUNDLE_RATIO * max(1, bundle_path.stat().st_size):
                    raise StoreError(f"bundle unpacks to {unpacked} bytes: refused")
                for name in members:
                    if Path(name).name != name:  # no directories, no traversal
                        raise StoreError(f"bundle member {name!r} is not a plain file name")
                    with bundle.open(name) as src, open(into / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, io.UnsupportedOperation, OSError) as exc:
            raise StoreError(f"bundle is not a readable zip: {exc}") from None

    def remove(self, name: str, version: str) -> None:
        folder = self.version_dir(name, version)
        if folder.exists():
            trash = folder.parent / f".trash-{version}-{os.getpid()}"
            os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def prune(self, keep: set[Path]) -> list[Path]:
        """Remove installed versions other than ``keep`` (the committed one and the one to revert to)."""
        keep = {Path(k).resolve() for k in keep}
        removed = []
        for name_dir in self.root.iterdir():
            if not name_dir.is_dir() or name_dir.name.startswith("."):
                continue
            for version_dir in name_dir.iterdir():
                if version_dir.name.startswith(".") or version_dir.resolve() in keep:
                    continue
                self.remove(name_dir.name, version_dir.name)
                removed.append(version_dir)
        return removed

    # -------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        return read_json(self.state_path, {"active": None, "previous": None, "trial": None, "failed": {}})

    def save_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_path, state)

    def update_state(self, **changes: Any) -> dict[str, Any]:
        state = self.state()
        state.update(changes)
        self.save_state(state)
        return state

    def active_dir(self) -> Path | None:
        """The committed model's directory, if the updater has ever committed one."""
        active = self.state().get("active")
        if not active:
            return None
        folder = Path(active)
        return folder if (folder / MANIFEST_FILENAME).exists() else None
