"""CVE ids a pending Debian update fixes, read from the changelog inside the candidate .deb.

For each source package with pending updates, one of its candidate .debs is fetched with
`apt-get download NAME=VERSION` into a cache directory; its changelog (`changelog.Debian.gz`,
or `changelog.gz` for native packages; never the binNMU-only `changelog.Debian.<arch>.gz`) is
read from the .deb's data archive, following a doc directory that is a symlink to another
package's; the CVE ids of the entries newer than the installed source version and up to the
candidate's are the update's `changelog_cves`.

A .deb is an ar archive holding data.tar.{gz,xz,bz2,zst}; tarfile reads all but zstd, for
which `dpkg-deb --fsys-tarfile` does the decompression (zstd joins the standard library only in 3.14).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO
from urllib.parse import quote

from patchday.collectors import CollectorError
from patchday.collectors.apt import Candidate, apt_options, is_safe_argument
from patchday.collectors.debversion import compare_versions
from patchday.collectors.host import Host
from patchday.collectors.updates import PendingUpdate

CVE = re.compile(r"CVE-\d{4}-\d{4,}")
# dpkg's Dpkg::Changelog::Entry::Debian header regex (scripts/Dpkg/Changelog/Entry/Debian.pm)
_HEADER = re.compile(
    r"^(?P<source>\w[-+0-9a-z.]*) \((?P<version>[^() \t]+)\)(?P<suites>(?:\s+[-+0-9a-z.]+)+);(?P<rest>.*)$", re.I
)
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER_SIZE = 60
_MAX_CHANGELOG = 64 * 1024 * 1024  # decompressed; a changelog bigger than this is not one
_MAX_SYMLINK_HOPS = 3


@dataclass(frozen=True)
class ChangelogEntry:
    """One `source (version) suites; urgency=...` block of a Debian changelog and the CVE ids in its text."""

    source: str
    version: str
    suites: str
    binary_only: bool
    cves: list[str]


@dataclass(frozen=True)
class DocFiles:
    """What a .deb holds under usr/share/doc/<package>: the changelog text, or the package its doc dir links to."""

    changelog: str | None
    native: bool
    symlink_to: str | None


def parse_changelog(text: str, origin: str = "changelog") -> list[ChangelogEntry]:
    """Entries of a Debian changelog, newest first; raises CollectorError naming `origin` when it has none."""
    entries: list[ChangelogEntry] = []
    header: re.Match[str] | None = None
    body: list[str] = []

    def close() -> None:
        if header is not None:
            found = list(dict.fromkeys(CVE.findall("\n".join(body))))
            binary_only = "binary-only=yes" in header.group("rest").replace(" ", "")
            entries.append(
                ChangelogEntry(
                    header.group("source"), header.group("version"), header.group("suites").strip(), binary_only, found
                )
            )

    for line in text.splitlines():
        if line[:1].isalnum():
            found = _HEADER.match(line)
            if found:
                close()
                header, body = found, []
                continue
            if line.startswith(("Old Changelog:", "Local variables:")):
                break  # what follows is not in the Debian format (dpkg-parsechangelog stops here too)
        if header is not None:
            body.append(line)
    close()
    if not entries:
        raise CollectorError(f"{origin} is not a Debian changelog: no 'source (version) suite; urgency=' line")
    return entries


def cves_between(entries: list[ChangelogEntry], installed: str, candidate: str) -> list[str]:
    """Sorted, distinct CVE ids of the entries with installed < version <= candidate (source versions)."""
    found: set[str] = set()
    for entry in entries:
        if entry.binary_only:
            continue  # a binNMU rebuilds without source changes: it fixes nothing by itself
        if compare_versions(entry.version, installed) > 0 and compare_versions(entry.version, candidate) <= 0:
            found.update(entry.cves)
    return sorted(found)


def ar_members(handle: IO[bytes], origin: str = "ar archive") -> Iterator[tuple[str, int, int]]:
    """(name, data offset, size) of each member of a Unix ar archive; raises CollectorError when it is not one."""
    if handle.read(len(_AR_MAGIC)) != _AR_MAGIC:
        raise CollectorError(f"{origin} is not an ar archive (a .deb is one)")
    offset = len(_AR_MAGIC)
    while True:
        header = handle.read(_AR_HEADER_SIZE)
        if not header:
            return
        if len(header) != _AR_HEADER_SIZE or header[58:60] != b"`\n":
            raise CollectorError(f"{origin}: truncated or corrupt ar member header at byte {offset}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size_text = header[48:58].decode("ascii", "replace").strip()
        if not size_text.isdigit():
            raise CollectorError(f"{origin}: ar member {name!r} has no valid size")
        size = int(size_text)
        offset += _AR_HEADER_SIZE
        yield name, offset, size
        offset += size + (size % 2)  # members are padded to an even offset
        handle.seek(offset)


class _MemberReader(io.RawIOBase):
    """Reads at most `size` bytes of `handle` from `offset`: one ar member as a file."""

    def __init__(self, handle: IO[bytes], offset: int, size: int) -> None:
        handle.seek(offset)
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        chunk = self._handle.read(min(len(buffer), self._left))
        buffer[: len(chunk)] = chunk
        self._left -= len(chunk)
        return len(chunk)


def _doc_files(tar: tarfile.TarFile, package: str, origin: str) -> DocFiles:
    doc_dir = f"usr/share/doc/{package}"
    debian: bytes | None = None
    native: bytes | None = None
    try:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name.lstrip("/")
            if name == doc_dir and member.issym():
                return DocFiles(None, False, os.path.basename(member.linkname.rstrip("/")))
            if not name.startswith(doc_dir + "/") or not member.isfile() or member.size > _MAX_CHANGELOG:
                continue
            if name == f"{doc_dir}/changelog.Debian.gz":
                extracted = tar.extractfile(member)
                debian = extracted.read() if extracted else None
                break
            if name == f"{doc_dir}/changelog.gz":
                extracted = tar.extractfile(member)
                native = extracted.read() if extracted else None
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise CollectorError(f"{origin}: corrupt data archive: {exc}") from None
    compressed = debian if debian is not None else native
    if compressed is None:
        return DocFiles(None, False, None)
    try:
        text = gzip.decompress(compressed).decode("utf-8", "replace")
    except (OSError, EOFError) as exc:
        raise CollectorError(f"{origin}: {doc_dir} changelog is not gzip data: {exc}") from None
    return DocFiles(text, debian is None, None)


def read_doc_files(deb_path: str, package: str) -> DocFiles:
    """The changelog (or doc-dir symlink) of `package` in the .deb at `deb_path`.

    Raises CollectorError naming the file when it is not a readable .deb.
    """
    try:
        with open(deb_path, "rb") as handle:
            members = {name: (offset, size) for name, offset, size in ar_members(handle, deb_path)}
            data = next((name for name in members if name.startswith("data.tar")), None)
            if data is None:
                raise CollectorError(f"{deb_path} has no data.tar member: not a .deb")
            if data == "data.tar.zst":
                return _doc_files_via_dpkg_deb(deb_path, package)
            offset, size = members[data]
            stream = io.BufferedReader(_MemberReader(handle, offset, size), buffer_size=1 << 16)
            try:
                with tarfile.open(fileobj=stream, mode="r|*") as tar:
                    return _doc_files(tar, package, deb_path)
            except tarfile.TarError as exc:
                raise CollectorError(f"{deb_path}: {data} is not a readable tar archive: {exc}") from None
    except OSError as exc:
        raise CollectorError(f"cannot read {deb_path}: {exc.strerror or exc}") from None


def _doc_files_via_dpkg_deb(deb_path: str, package: str) -> DocFiles:
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise CollectorError(f"{deb_path} is zstd-compressed and dpkg-deb is not installed to unpack it")
    with subprocess.Popen(  # noqa: S603 - argv list, no shell
        [dpkg_deb, "--fsys-tarfile", deb_path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                return _doc_files(tar, package, deb_path)
        except tarfile.TarError as exc:
            raise CollectorError(f"dpkg-deb --fsys-tarfile {deb_path} gave no tar stream: {exc}") from None
        finally:
            process.kill()


def deb_file_name(name: str, version: str, arch: str) -> str:
    """The file name `apt-get download` gives a package (the epoch colon is written %3a)."""
    return f"{name}_{quote(version, safe='+~.-')}_{arch}.deb".replace("%3A", "%3a")


class DebCache:
    """Candidate .debs fetched with `apt-get download` into `directory`, each fetched at most once."""

    def __init__(self, host: Host, directory: str) -> None:
        self.host = host
        self.directory = directory

    def _path(self, name: str, version: str, arch: str) -> str:
        return os.path.join(self.directory, deb_file_name(name, version, arch))

    def fetch(self, wanted: list[tuple[str, str, str]], problems: list[str]) -> dict[tuple[str, str], str]:
        """(name, version) -> local .deb path for each (name, version, arch) that could be fetched."""
        missing = [w for w in wanted if not os.path.exists(self._path(*w)) and is_safe_argument(w[0], w[1])]
        if missing:
            self._download([f"{n}={v}" for n, v, _ in missing], problems, quiet=True)
            still = [w for w in missing if not os.path.exists(self._path(*w))]
            for name, version, _ in still:  # one at a time, so one bad candidate does not hide the rest
                self._download([f"{name}={version}"], problems, quiet=False)
        found = {}
        for name, version, arch in wanted:
            path = self._path(name, version, arch)
            if os.path.exists(path):
                found[(name, version)] = path
        return found

    def fetch_current(self, name: str, problems: list[str]) -> str | None:
        """The candidate .deb of `name` at whatever version apt would install."""
        if not is_safe_argument(name, "0"):
            return None
        before = set(os.listdir(self.directory))
        self._download([name], problems, quiet=False)
        new = sorted(f for f in set(os.listdir(self.directory)) - before if f.startswith(f"{name}_"))
        if new:
            return os.path.join(self.directory, new[0])
        cached = sorted(f for f in before if f.startswith(f"{name}_") and f.endswith(".deb"))
        return os.path.join(self.directory, cached[-1]) if cached else None

    def _download(self, items: list[str], problems: list[str], quiet: bool) -> None:
        argv = ["apt-get", *apt_options(self.host), "download", "--", *items]
        try:
            done = self.host.run(argv, 900, self.directory)
        except CollectorError as exc:
            problems.append(f"apt-get download failed: {exc}")
            return
        if done.returncode != 0 and not quiet:
            detail = [line for line in done.stderr.splitlines() if line.startswith("E:")][:3]
            problems.append(f"apt-get download {' '.join(items)[:200]} failed: {'; '.join(detail)[:300]}")


def _changelog_for(cache: DebCache, deb: str, package: str, debs: dict[str, str], problems: list[str]) -> str | None:
    for _ in range(_MAX_SYMLINK_HOPS + 1):
        doc = read_doc_files(deb, package)
        if doc.symlink_to is None:
            if doc.changelog is None:
                problems.append(f"{os.path.basename(deb)} has no changelog under usr/share/doc/{package}")
            return doc.changelog
        package = doc.symlink_to
        next_deb = debs.get(package) or cache.fetch_current(package, problems)
        if next_deb is None:
            problems.append(f"doc dir of {os.path.basename(deb)} links to {package}, whose .deb could not be fetched")
            return None
        deb = next_deb
    problems.append(f"doc dir symlinks of {os.path.basename(deb)} go on for more than {_MAX_SYMLINK_HOPS} hops")
    return None


def with_changelog_cves(
    host: Host,
    updates: list[PendingUpdate],
    installed_sources: dict[str, str],
    candidates: dict[tuple[str, str], Candidate],
    cache_dir: str,
    problems: list[str],
) -> list[PendingUpdate]:
    """`updates` with `changelog_cves` filled in from each source package's candidate changelog.

    `installed_sources` maps installed binary package names to their installed source version
    (dpkg status); `candidates` gives each candidate's size, so the smallest .deb of a source is
    fetched. Failures for one source package are appended to `problems` and leave its list empty.
    """
    groups: dict[str, list[PendingUpdate]] = {}
    for update in updates:
        if update.manager == "apt" and update.source and update.source_version and update.installed:
            groups.setdefault(update.source, []).append(update)
    chosen: dict[str, PendingUpdate] = {}
    for source, members in groups.items():
        chosen[source] = min(
            members, key=lambda u: (candidates.get((u.name, u.candidate), Candidate("", "", 1 << 62)).size, u.name)
        )
    cache = DebCache(host, cache_dir)
    fetched = cache.fetch([(u.name, u.candidate, u.arch) for u in chosen.values()], problems)
    pending_debs = {u.name: path for u in chosen.values() if (path := fetched.get((u.name, u.candidate)))}
    cves_by_source: dict[str, list[str]] = {}
    for source, update in sorted(chosen.items()):
        installed = next((installed_sources[u.name] for u in groups[source] if u.name in installed_sources), None)
        deb = fetched.get((update.name, update.candidate))
        if installed is None or deb is None:
            if deb is None:
                problems.append(f"no .deb of {update.name} {update.candidate} to read the {source} changelog from")
            continue
        try:
            text = _changelog_for(cache, deb, update.name, pending_debs, problems)
            if text is not None:
                entries = parse_changelog(text, f"changelog of {source} in {os.path.basename(deb)}")
                cves_by_source[source] = cves_between(entries, installed, update.source_version)
        except CollectorError as exc:
            problems.append(str(exc))
    return [replace(u, changelog_cves=list(cves_by_source.get(u.source, []))) for u in updates]
