"""Use cases of feed imports: each run lands completely or not at all, is recorded, audited, and
re-evaluates the matches of the packages whose advisories changed. Re-importing a file is a no-op."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from itertools import islice
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from patchday.advisories import queries, services
from patchday.advisories.models import EpssScore, FeedRun, KevEntry, Vulnerability
from patchday.audit import services as audit
from patchday.core import osv
from patchday.core.audit import Actor
from patchday.core.errors import FeedUnreadable, InvalidInput, PatchdayError
from patchday.core.vulnerability import CveRecord, best_cvss
from patchday.core.vulnerability import EpssScore as EpssValue
from patchday.core.vulnerability import KevEntry as KevValue
from patchday.feeds.files import MalformedRecords
from patchday.server.bulk import insert_rows

BATCH = 2000


@dataclass(frozen=True, slots=True)
class Counts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    data_date: date | None = None
    skipped: tuple[str, ...] = ()  # malformed records left out of a dump (see patchday.feeds.files.MalformedRecords)


def checksum(path: Path) -> str:
    """SHA-256 of a file, or of the sorted (name, digest) list of a directory's files."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def run_import(actor: Actor, source: str, path: Path, load: Callable[[], Counts], origin: str | None = None) -> FeedRun:
    """Record a FeedRun for `source` from `path`, run `load` in one transaction, and finish the run.

    `load` reads and writes; when it raises, its writes are rolled back, the run is marked failed
    with the error (and audited), and the error propagates. The previous data stays as it was.
    """
    run = FeedRun.objects.create(
        source=source,
        origin=(origin or str(path))[:1024],
        checksum=checksum(path) if path.exists() else "",
        started_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            counts = load()
            run.outcome, run.finished_at = FeedRun.SUCCEEDED, timezone.now()
            run.added, run.updated, run.unchanged, run.removed = (
                counts.added, counts.updated, counts.unchanged, counts.removed
            )  # fmt: skip
            run.data_date, run.skipped = counts.data_date, list(counts.skipped)
            run.save()
            audit.record(
                actor,
                "feed.import",
                "feed_run",
                run.pk,
                {"source": source, "origin": run.origin, "added": counts.added, "updated": counts.updated,
                 "unchanged": counts.unchanged, "removed": counts.removed, "skipped": len(counts.skipped),
                 "checksum": run.checksum},
            )  # fmt: skip
    except (PatchdayError, OSError) as exc:
        run.outcome, run.finished_at, run.error = FeedRun.FAILED, timezone.now(), str(exc)[:4000]
        run.save(update_fields=["outcome", "finished_at", "error"])
        audit.record(actor, "feed.import_failed", "feed_run", run.pk, {"source": source, "error": run.error[:500]})
        raise
    refresh_planner_statistics()
    return run


def refresh_planner_statistics() -> None:
    """ANALYZE the tables a feed run fills (PostgreSQL). Before autovacuum gets to a freshly loaded
    table, the planner believes it is empty and picks nested loops that take minutes instead of ms."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE advisories_advisory, advisories_advisorycve, advisories_affectedrange, "
            "advisories_vulnerability, advisories_keventry, advisories_epssscore, findings_match"
        )


# -- KEV --------------------------------------------------------------------------------------------------


def _kev_fields(entry: KevValue) -> dict[str, object]:
    return {
        "vendor": entry.vendor[:255],
        "product": entry.product[:255],
        "name": entry.name[:512],
        "description": entry.description,
        "date_added": entry.date_added,
        "due_date": entry.due_date,
        "required_action": entry.required_action,
        "ransomware": entry.ransomware[:16],
        "notes": entry.notes,
        "cwes": list(entry.cwes),
    }


def store_kev(entries: Iterable[KevValue]) -> Counts:
    """Make the KEV table equal the catalog (entries CISA removed are removed)."""
    wanted = {e.cve_id: e for e in entries}
    existing = {row.cve_id: row for row in KevEntry.objects.all()}
    added = updated = unchanged = 0
    creates: list[KevEntry] = []
    updated_ids: set[str] = set()
    for cve_id, entry in wanted.items():
        fields = _kev_fields(entry)
        row = existing.get(cve_id)
        if row is None:
            creates.append(KevEntry(cve_id=cve_id, **fields))
            added += 1
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            row.save()
            updated += 1
            updated_ids.add(cve_id)
        else:
            unchanged += 1
    KevEntry.objects.bulk_create(creates, batch_size=BATCH)
    gone = set(existing) - set(wanted)
    KevEntry.objects.filter(cve_id__in=gone).delete()
    changed = {c.cve_id for c in creates} | gone | updated_ids
    _reprioritize(changed)
    newest = max((e.date_added for e in wanted.values()), default=None)
    return Counts(added, updated, unchanged, len(gone), newest)


def _reprioritize(cve_ids: set[str] | None) -> None:
    """Findings of these CVEs (None: every finding) take the new KEV/EPSS/CVE data into their priority."""
    from patchday.findings import priority
    from patchday.findings.models import Finding

    if cve_ids is None:
        priority.reprioritize(Finding.objects.filter(status__in=priority.PRIORITIZED).values_list("pk", flat=True))
    elif cve_ids:
        priority.reprioritize_vulnerabilities(cve_ids)


# -- EPSS -------------------------------------------------------------------------------------------------


def store_epss(score_date: date, batches: Iterable[Iterable[EpssValue]]) -> Counts:
    """Store one day's scores. A date already stored is left as it is (EPSS publishes one file a day)."""
    if EpssScore.objects.filter(score_date=score_date).exists():
        unchanged = sum(sum(1 for _ in batch) for batch in batches)  # still read it all: it must be valid
        return Counts(unchanged=unchanged, data_date=score_date)
    added = 0
    for batch in batches:
        rows = [(s.cve_id, s.score_date, s.probability, s.percentile) for s in batch]
        _insert_epss(rows)
        added += len(rows)
    _reprioritize(None)  # a new day of EPSS moves every score a little
    return Counts(added=added, data_date=score_date)


def _insert_epss(rows: list[tuple[str, date, float, float]]) -> None:
    """Bulk insert without the ORM: a day is 360,000 rows."""
    insert_rows("advisories_epssscore", ("cve_id", "score_date", "probability", "percentile"), rows)


# -- CVE records (NVD, CVE JSON 5) ------------------------------------------------------------------------


def _cve_fields(record: CveRecord) -> dict[str, object]:
    best = best_cvss(record.cvss)
    return {
        "source": record.source,
        "description": record.description,
        "published": record.published,
        "modified": record.modified,
        "status": record.status[:64],
        "cvss": [
            {
                "version": s.version.value,
                "vector": s.vector,
                "base_score": s.base_score,
                "source": s.source,
                "scorer": s.scorer,
            }
            for s in record.cvss
        ],
        "cvss_version": best.version.value if best else "",
        "cvss_vector": best.vector[:255] if best else "",
        "cvss_score": best.base_score if best else None,
        "cvss_source": f"{best.source}:{best.scorer}"[:64] if best else "",
        "cwes": list(record.cwes),
        "references": list(record.references),
        "ssvc": (
            {
                "exploitation": record.ssvc.exploitation,
                "automatable": record.ssvc.automatable,
                "technical_impact": record.ssvc.technical_impact,
                "source": record.ssvc.source,
                "assessed": record.ssvc.assessed.isoformat() if record.ssvc.assessed else None,
            }
            if record.ssvc
            else None
        ),
        "kev_date_added": record.kev_date_added,
    }


_VULNERABILITY_COLUMNS = (
    "cve_id", "source", "description", "published", "modified", "status", "cvss", "cvss_version", "cvss_vector",
    "cvss_score", "cvss_source", "cwes", "references", "ssvc", "kev_date_added", "imported_at",
)  # fmt: skip
_JSON_COLUMNS = frozenset({"cvss", "cwes", "references", "ssvc"})


def _insert_vulnerabilities(rows: list[Vulnerability]) -> None:
    """New CVE rows without the ORM (COPY on PostgreSQL): building 100,000 model inserts cost more than the writes."""
    ops = connection.ops
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        def json_value(value: object) -> object:
            return None if value is None else Jsonb(value)
    else:

        def json_value(value: object) -> object:
            return None if value is None else json.dumps(value)

    def cell(row: Vulnerability, column: str) -> object:
        value = getattr(row, column)
        if column in _JSON_COLUMNS:
            return json_value(value)
        if column in ("published", "modified", "imported_at"):
            return ops.adapt_datetimefield_value(value)
        if column == "kev_date_added":
            return ops.adapt_datefield_value(value)
        return value

    insert_rows(
        "advisories_vulnerability",
        [connection.ops.quote_name(c) for c in _VULNERABILITY_COLUMNS],
        [[cell(row, c) for c in _VULNERABILITY_COLUMNS] for row in rows],
    )


def _batches(items: Iterable[CveRecord], size: int) -> Iterator[list[CveRecord]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def store_cve_records(records: Iterable[CveRecord]) -> Counts:
    """Upsert CVE records in batches; a record whose `modified` time is unchanged is skipped."""
    added = updated = unchanged = 0
    touched: set[str] = set()
    now = timezone.now()
    newest: date | None = None
    for batch in _batches(records, BATCH):
        by_id = {r.cve_id: r for r in batch}
        existing = {row.cve_id: row for row in Vulnerability.objects.filter(cve_id__in=list(by_id))}
        creates: list[Vulnerability] = []
        changes: list[Vulnerability] = []
        for cve_id, record in by_id.items():
            if record.modified and (newest is None or record.modified.date() > newest):
                newest = record.modified.date()
            row = existing.get(cve_id)
            if row is not None and row.modified == record.modified and row.source == record.source:
                unchanged += 1
                continue
            fields = _cve_fields(record)
            if row is None:
                creates.append(Vulnerability(cve_id=cve_id, imported_at=now, **fields))
                added += 1
            else:
                for k, v in fields.items():
                    setattr(row, k, v)
                row.imported_at = now
                changes.append(row)
                updated += 1
        _insert_vulnerabilities(creates)
        touched.update(r.cve_id for r in creates)
        touched.update(r.cve_id for r in changes)
        if changes:
            Vulnerability.objects.bulk_update(changes, [*_cve_fields(batch[0]), "imported_at"], batch_size=500)
    _reprioritize(touched)
    return Counts(added, updated, unchanged, 0, newest)


# -- OSV and Debian tracker advisories ---------------------------------------------------------------------


def store_advisories(actor: Actor, records: list[osv.Advisory], source: str) -> Counts:
    """Store advisories (see services.import_advisories), rematch the packages they touch and update the
    findings of the hosts that have them."""
    from patchday.findings import ledger
    from patchday.findings import services as matcher

    report = services.import_advisories(actor, records, source)
    matcher.rematch_packages(report.touched)
    if report.touched:
        ledger.reconcile_hosts(
            ledger.hosts_with_packages(report.touched), verified=False, reason=f"{source} advisories"
        )
    newest = max((r.modified.date() for r in records if r.modified), default=None)
    return Counts(report.added, report.updated, report.unchanged, 0, newest)


# -- reading a source -------------------------------------------------------------------------------------


def _reading_a_dump(
    source: str, path: Path, strict: bool, store: Callable[[MalformedRecords], Counts]
) -> Callable[[], Counts]:
    """A loader running `store` with a fresh malformed-record policy, adding the records it left out to the
    counts; a dump of which no record could be read fails."""

    def load() -> Counts:
        malformed = MalformedRecords(strict=strict)
        counts = store(malformed)
        if malformed.messages and counts.added + counts.updated + counts.unchanged == 0:
            raise FeedUnreadable(
                f"{source} {path}: no record could be read ({len(malformed.messages)} malformed); "
                f"the first: {malformed.messages[0]}"
            )
        return replace(counts, skipped=tuple(malformed.messages))

    return load


def loader_for(
    actor: Actor, source: str, path: Path, score_date: date | None = None, *, strict: bool = False
) -> Callable[[], Counts]:
    """A function that reads `path` as `source` and stores it; run_import runs it in one transaction.

    KEV and EPSS files are one document each: any error fails the run. In OSV, NVD and CVE JSON 5 dumps a
    malformed record is left out and listed in the run (FeedRun.skipped), unless `strict`, when it fails the
    run; so does a dump with more than MAX_SKIPPED malformed records, or with no readable record at all. The
    Debian lists are read all or nothing (their reader already leaves out and reports a bad version line).
    """
    if source == "kev":
        from patchday.feeds.kev import read_kev

        return lambda: store_kev(read_kev(path).entries)
    if source == "epss":
        from patchday.feeds.epss import read_epss

        def load_epss() -> Counts:
            snapshot = read_epss(path, score_date=score_date)
            return store_epss(snapshot.score_date, snapshot.batches())

        return load_epss
    if source == "nvd":
        from patchday.feeds.nvd import read_nvd

        return _reading_a_dump(source, path, strict, lambda m: store_cve_records(read_nvd(path, malformed=m)))
    if source == "cve5":
        from patchday.feeds.cve5 import read_cve5

        return _reading_a_dump(source, path, strict, lambda m: store_cve_records(read_cve5(path, malformed=m)))
    if source in {"debian-dsa", "debian-dla"}:
        from patchday.feeds.debian_tracker import read_debian_list

        return lambda: store_advisories(actor, read_debian_list(path), source)
    if source == "osv":
        from patchday.feeds.osv import load_osv

        origin = f"osv:{path.name}"[:64]
        return _reading_a_dump(
            source, path, strict, lambda m: store_advisories(actor, load_osv(path, malformed=m), origin)
        )
    raise InvalidInput(f"unknown feed source {source!r}")


SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshot"
SNAPSHOT: tuple[tuple[str, str], ...] = (
    ("kev", "kev-2026.08.21.json.gz"),
    ("epss", "epss_scores-2026-08-16.csv.gz"),
    ("osv", "debian-bookworm-osv-2026-08-21.json.gz"),
    ("osv", "pypa-osv-2024-10-10.json.gz"),
)
BUNDLED_PREFIX = queries.BUNDLED_PREFIX


def import_bundled_snapshot(actor: Actor) -> list[FeedRun]:
    """Load each bundled file whose source has never been imported successfully (offline first run)."""
    runs: list[FeedRun] = []
    for source, name in SNAPSHOT:
        origin = f"{BUNDLED_PREFIX}{name}"
        if (
            FeedRun.objects.filter(source=source, outcome=FeedRun.SUCCEEDED)
            .exclude(origin__startswith=BUNDLED_PREFIX)
            .exists()
        ):
            continue  # real data has arrived for this source
        if FeedRun.objects.filter(origin=origin, outcome=FeedRun.SUCCEEDED).exists():
            continue
        path = SNAPSHOT_DIR / name
        run = run_import(actor, source, path, loader_for(actor, source, path), origin=origin)
        runs.append(run)
    return runs


def is_bundled_snapshot_only() -> bool:
    """True while every successful feed run so far came from the bundled snapshot (see queries.bundled_snapshot)."""
    return queries.bundled_snapshot() is not None


# -- downloading feeds (sync) and moving them as bundles (export, import) -----------------------------------

SIDECAR_SUFFIX = ".meta.json"
MANIFEST = "manifest.json"


def _sidecar(cached: Path) -> Path:
    return cached.with_name(cached.name + SIDECAR_SUFFIX)


def _cached_file(source: str, url: str, cache_dir: Path) -> Path:
    """cache_dir/SOURCE/NAME, NAME being the URL's last path segment (readers tell formats from it)."""
    from urllib.parse import urlsplit

    name = Path(urlsplit(url).path).name or "feed"
    return cache_dir / source / name


def _read_sidecar(cached: Path) -> dict[str, str]:
    try:
        meta = json.loads(_sidecar(cached).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}


def _failing(exc: Exception) -> Callable[[], Counts]:
    def load() -> Counts:
        raise exc

    return load


def sync_source(
    actor: Actor, source: str, url: str, cache_dir: Path, *, progress: bool = False, strict: bool = False
) -> FeedRun:
    """Download `source` from `url` (conditionally) into `cache_dir` and import it; returns the finished run.

    The cached file (cache_dir/SOURCE/NAME) and its sidecar (NAME.meta.json: url, etag, last_modified,
    sha256, data_date) change only after a successful import, so they always hold the last good data.
    304 Not Modified is recorded as a successful run that changed nothing. A failed download or import is
    recorded as a failed run and raised (FeedUnavailable, FeedUnreadable, ...); the previous data stays.
    `strict` fails the run on a malformed record of a dump instead of leaving it out (see loader_for).
    """
    from patchday.feeds import download
    from patchday.feeds.detect import detect_source

    cached = _cached_file(source, url, cache_dir)
    meta = _read_sidecar(cached)
    known = None
    if cached.exists() and meta.get("url") == url:
        known = download.Validators(meta.get("etag") or None, meta.get("last_modified") or None)
    incoming = cache_dir / source / "incoming" / cached.name
    try:
        fetched = download.fetch(url, incoming, known, progress=progress)
    except (PatchdayError, OSError) as exc:
        return run_import(actor, source, cached, _failing(exc), origin=url)  # records the failure, raises
    if not fetched.modified:
        last_date = date.fromisoformat(meta["data_date"]) if meta.get("data_date") else None
        return run_import(actor, source, cached, lambda: Counts(data_date=last_date), origin=url)

    def load() -> Counts:
        with incoming.open("rb") as handle:  # portals and proxies answer 200 with an error page
            if handle.read(512).lstrip().lower().startswith((b"<!doctype html", b"<html")):
                raise FeedUnreadable(f"{url} served an HTML page, not the {source} feed (an error page?)")
        found = detect_source(incoming)
        if found != source:
            raise FeedUnreadable(f"{url} served {found} data, not {source}")
        return loader_for(actor, source, incoming, strict=strict)()

    try:
        run = run_import(actor, source, incoming, load, origin=url)
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    for stale in cached.parent.iterdir():  # a file of an earlier URL would be exported as current
        if stale.is_file() and stale.name not in {cached.name, _sidecar(cached).name}:
            stale.unlink()
    incoming.replace(cached)
    sidecar = {
        "url": url,
        "source": source,
        "etag": fetched.validators.etag or "",
        "last_modified": fetched.validators.last_modified or "",
        "sha256": run.checksum,
        "data_date": run.data_date.isoformat() if run.data_date else "",
    }
    _sidecar(cached).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return run


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One file of a bundle, as manifest.json lists it."""

    file: str
    source: str
    sha256: str
    data_date: str


def export_bundle(cache_dir: Path, target: Path) -> list[BundleEntry]:
    """Copy the last successfully synced file of each source into `target`, with manifest.json listing them.

    Raises InvalidInput when nothing has been synced yet.
    """
    entries: list[BundleEntry] = []
    for meta_path in sorted(cache_dir.glob(f"*/*{SIDECAR_SUFFIX}")):
        cached = meta_path.with_name(meta_path.name.removesuffix(SIDECAR_SUFFIX))
        meta = _read_sidecar(cached)
        if not cached.is_file() or not meta.get("source"):
            continue
        # SOURCE/NAME: two sources may publish files of one name, and the OSV loader names advisories after NAME
        name = f"{meta['source']}/{cached.name}"
        entries.append(BundleEntry(name, meta["source"], checksum(cached), meta.get("data_date", "")))
        (target / meta["source"]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target / name)
    if not entries:
        raise InvalidInput(f"no synced feed files in {cache_dir}; run `patchday feeds sync` first")
    manifest = {"files": [{"file": e.file, "source": e.source, "sha256": e.sha256, "data_date": e.data_date}
                          for e in entries]}  # fmt: skip
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


def is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def read_bundle(directory: Path) -> list[BundleEntry]:
    """The entries of the bundle in `directory`, every file's SHA-256 checked against the manifest.

    Raises FeedUnreadable naming the file when the manifest is malformed, a file is missing or altered.
    """
    try:
        raw = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        entries = [BundleEntry(str(f["file"]), str(f["source"]), str(f["sha256"]), str(f.get("data_date") or ""))
                   for f in raw["files"]]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FeedUnreadable(f"{directory / MANIFEST} is not a bundle manifest: {exc}") from None
    for entry in entries:
        path = directory / entry.file
        if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
            raise FeedUnreadable(f"{directory / MANIFEST} names {entry.file!r}, which is outside the bundle")
        if not path.is_file():
            raise FeedUnreadable(f"bundle file {path} is missing")
        if checksum(path) != entry.sha256:
            raise FeedUnreadable(f"bundle file {path} does not match its SHA-256 in {MANIFEST}; nothing was imported")
    return entries


def import_bundle(actor: Actor, directory: Path, *, strict: bool = False) -> list[FeedRun]:
    """Verify every file of the bundle in `directory` (read_bundle), then import each; returns the runs.

    Nothing is imported unless every checksum matches. A file that fails to import raises after its
    failed run is recorded; the files before it stay imported (each run is its own transaction).
    """
    runs: list[FeedRun] = []
    for entry in read_bundle(directory):
        path = directory / entry.file
        day = date.fromisoformat(entry.data_date) if entry.source == "epss" and entry.data_date else None
        origin = f"bundle:{path}"
        runs.append(run_import(actor, entry.source, path, loader_for(actor, entry.source, path, day, strict=strict),
                               origin=origin))  # fmt: skip
    return runs
