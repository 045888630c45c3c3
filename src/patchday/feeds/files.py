"""Reading feed files from disk: plain or gzipped files and tar archives, never more than a limit, errors as
FeedUnreadable; and the policy for a malformed record inside a dump of many (MalformedRecords)."""

from __future__ import annotations

import gzip
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from patchday.core.errors import FeedUnreadable

TAR_SUFFIXES: Final = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
MAX_TAR_MEMBERS: Final = 2_000_000  # cvelistV5 holds about 300,000 records; osv.dev's largest ecosystem ~200,000
MAX_TAR_BYTES: Final = 16 << 30  # the sum of member sizes: a bound on the work a hostile archive can cause
MAX_HEAD_MEMBER_BYTES: Final = 256 * 1024 * 1024  # the member tar_head reads: an NVD API page at most
MAX_SKIPPED: Final = 100  # malformed records one dump may leave out before it counts as broken


def read_limited(path: Path, label: str, max_bytes: int) -> bytes:
    """The (decompressed, for .gz) bytes of `path`; refuses more than `max_bytes` without reading them all.

    `label` names the feed in messages ("NVD", "OSV"); a truncated or corrupt gzip is refused, not raised raw.
    """
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            raw: bytes = handle.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedUnreadable(f"{label}: cannot read file {path}: {exc}") from None
    if len(raw) > max_bytes:
        raise FeedUnreadable(f"{label}: file {path} is larger than {max_bytes} bytes")
    return raw


def is_tar(path: Path) -> bool:
    return path.name.endswith(TAR_SUFFIXES)


def tar_members(
    path: Path, label: str, wanted: Callable[[str], bool], max_member_bytes: int
) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each regular file in the tar archive `path` whose base name `wanted` accepts, in archive
    order. The archive is read once as a stream (tarfile mode "r|*": any compression, nothing extracted to disk,
    one member in memory at a time). Symbolic and hard links, devices and directories are skipped, never followed.

    Raises FeedUnreadable naming `label`, the file and the member: an unreadable or truncated archive, a member
    named with an absolute path or `..` (a hostile archive), a wanted member over `max_member_bytes`, more than
    MAX_TAR_MEMBERS members or MAX_TAR_BYTES bytes in all.
    """
    members = total = 0
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                members += 1
                total += max(member.size, 0)
                if members > MAX_TAR_MEMBERS or total > MAX_TAR_BYTES:
                    raise FeedUnreadable(
                        f"{label}: {path} holds more than {MAX_TAR_MEMBERS} members or {MAX_TAR_BYTES} bytes"
                    )
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise FeedUnreadable(f"{label}: {path} member {member.name!r} points outside the archive")
                if not member.isreg() or not wanted(name.name):
                    continue
                if member.size > max_member_bytes:
                    limit = max_member_bytes
                    raise FeedUnreadable(f"{label}: {path} member {member.name} is larger than {limit} bytes")
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover (isreg() members always have data)
                    continue
                yield member.name, handle.read(member.size)  # the header's size, checked above
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise FeedUnreadable(f"{label}: {path} is not a readable tar archive: {exc}") from None


def tar_head(path: Path, label: str, wanted: Callable[[str], bool], size: int = 8192) -> tuple[str, bytes]:
    """The name and first `size` bytes of the first member `wanted` accepts (see tar_members), for telling
    the feed from the content. Raises FeedUnreadable when the archive holds no such member."""
    for name, data in tar_members(path, "archive", wanted, MAX_HEAD_MEMBER_BYTES):
        return name, data[:size]
    raise FeedUnreadable(f"{path} holds no feed record files to tell its feed from")


@dataclass(slots=True)
class MalformedRecords:
    """What happens to a malformed record inside a dump of many records (OSV, NVD, CVE JSON 5).

    `strict`: the record's FeedUnreadable is raised and the run fails. Otherwise the record is left out and its
    message kept in `messages`; past `limit` such records the dump counts as broken, not as a good dump with a
    bad record, and fails. Errors of the dump as a whole (an unreadable archive, a file over its size limit,
    a single-document file that is not JSON) are never skipped.
    """

    strict: bool = False
    limit: int = MAX_SKIPPED
    messages: list[str] = field(default_factory=list)

    def skip(self, error: FeedUnreadable) -> None:
        """Leave the record out (or raise `error` when strict, or when the limit is passed)."""
        if self.strict:
            raise error
        if len(self.messages) >= self.limit:
            raise FeedUnreadable(
                f"more than {self.limit} malformed records, so the dump is taken as broken; the last: {error}"
            ) from error
        self.messages.append(str(error))


def skip_or_raise(error: FeedUnreadable, malformed: MalformedRecords | None) -> None:
    """Raise `error` without a policy (the readers' default: all or nothing), else apply the policy."""
    if malformed is None:
        raise error
    malformed.skip(error)
