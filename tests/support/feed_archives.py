"""Feed dumps as their publishers ship them, packed at test time from the small fixture directories."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def pack(directory: Path, target: Path) -> Path:
    """`target` (.tar.xz, .tar.gz or .tar, by its name): every file under `directory`, named relative to it."""
    mode = "w:xz" if target.name.endswith(".xz") else "w:gz" if target.name.endswith(".gz") else "w"
    with tarfile.open(target, mode) as archive:
        for file in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.add(file, arcname=str(file.relative_to(directory)))
    return target


def add_member(archive: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> None:
    """Add one member of any kind (a file, a symbolic link to `data`, ...) to an archive open for writing."""
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    else:
        info.linkname = data.decode()
        archive.addfile(info)
