"""`feeds sync` against a real HTTP server on 127.0.0.1 serving recorded feed files: conditional requests,
retries, error pages, the size limit, and bundles exported and imported. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from patchday.advisories import feed_imports
from patchday.advisories.models import Advisory, EpssScore, FeedRun, KevEntry
from patchday.core.errors import FeedUnavailable, FeedUnreadable
from patchday.feeds import download
from tests.conftest import SYSTEM_ACTOR
from tests.support.feed_archives import add_member
from tests.support.fleet import FIXTURES

FEEDS = FIXTURES / "feeds"
KEV = FEEDS / "kev-2026.08.21-first200.json.gz"
EPSS = FEEDS / "epss_scores-2026-08-16.head-2000.csv.gz"
OSV = FEEDS / "debian-bookworm-osv-2026-08-21.json.gz"
ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"


@dataclass
class Route:
    """What the server answers for one path: first the statuses in `failures`, then `body` with an ETag."""

    body: bytes
    failures: list[int] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class FeedServer:
    """A threaded http.server on 127.0.0.1; `requests` records (path, If-None-Match) of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("If-None-Match")))
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.failures:
                    self.send_error(route.failures.pop(0))
                    return
                if self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", route.etag)
                self.send_header("Last-Modified", "Thu, 21 Aug 2026 12:00:00 GMT")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def serve(self, path: str, file: Path, failures: list[int] | None = None) -> str:
        self.routes[path] = Route(file.read_bytes(), failures or [])
        return self.url(path)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    feed_server = FeedServer()
    feed_server.thread.start()
    yield feed_server
    feed_server.httpd.shutdown()
    feed_server.httpd.server_close()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "RETRY_DELAY", 0.01)


def sync(source: str, url: str, cache: Path) -> FeedRun:
    return feed_imports.sync_source(SYSTEM_ACTOR, source, url, cache)


@pytest.mark.django_db
def test_sync_imports_then_a_second_sync_is_not_modified(server: FeedServer, tmp_path: Path) -> None:
    url = server.serve(f"/feeds/{KEV.name}", KEV)
    first = sync("kev", url, tmp_path)
    assert (first.outcome, first.added, first.origin) == (FeedRun.SUCCEEDED, 200, url)
    cached = tmp_path / "kev" / KEV.name
    assert cached.read_bytes() == KEV.read_bytes()
    meta = json.loads((tmp_path / "kev" / f"{KEV.name}.meta.json").read_text())
    assert meta["etag"] == server.routes[f"/feeds/{KEV.name}"].etag
    assert meta["sha256"] == hashlib.sha256(KEV.read_bytes()).hexdigest()

    again = sync("kev", url, tmp_path)
    assert server.requests[-1] == (f"/feeds/{KEV.name}", meta["etag"])  # conditional
    assert again.outcome == FeedRun.SUCCEEDED
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 0, 0)
    assert again.data_date == first.data_date
    assert KevEntry.objects.count() == 200


@pytest.mark.django_db
def test_a_server_error_is_retried_and_persistent_errors_fail_the_run(server: FeedServer, tmp_path: Path) -> None:
    url = server.serve(f"/{EPSS.name}", EPSS, failures=[500])
    run = sync("epss", url, tmp_path)
    assert run.outcome == FeedRun.SUCCEEDED
    assert [path for path, _ in server.requests] == [f"/{EPSS.name}"] * 2
    assert EpssScore.objects.count() == run.added > 0

    down = server.serve("/down.json.gz", KEV, failures=[503, 502, 500])
    with pytest.raises(FeedUnavailable, match="after 3 tries"):
        sync("kev", down, tmp_path)
    assert len(server.requests) == 5
    failed = FeedRun.objects.filter(source="kev").get()
    assert failed.outcome == FeedRun.FAILED
    assert "500" in failed.error
    missing = server.url("/nowhere.json")
    with pytest.raises(FeedUnavailable, match="404"):  # not retried
        sync("kev", missing, tmp_path)
    assert len(server.requests) == 6


@pytest.mark.django_db
def test_an_html_page_served_with_200_fails_and_the_previous_data_stays(server: FeedServer, tmp_path: Path) -> None:
    path = f"/feeds/{KEV.name}"
    url = server.serve(path, KEV)
    sync("kev", url, tmp_path)
    meta_before = (tmp_path / "kev" / f"{KEV.name}.meta.json").read_text()
    server.routes[path] = Route(ERROR_PAGE)
    with pytest.raises(FeedUnreadable, match="HTML"):
        sync("kev", url, tmp_path)
    assert [r.outcome for r in FeedRun.objects.all()] == [FeedRun.FAILED, FeedRun.SUCCEEDED]
    assert KevEntry.objects.count() == 200
    assert (tmp_path / "kev" / KEV.name).read_bytes() == KEV.read_bytes()
    assert (tmp_path / "kev" / f"{KEV.name}.meta.json").read_text() == meta_before
    assert not any((tmp_path / "kev" / "incoming").iterdir())


@pytest.mark.django_db
def test_unreachable_servers_and_oversized_bodies_are_feed_unavailable(
    server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.serve(f"/{KEV.name}", KEV)
    monkeypatch.setattr(download, "MAX_BYTES", 1000)
    with pytest.raises(FeedUnavailable, match="larger than the limit"):
        sync("kev", url, tmp_path)
    closed = f"http://127.0.0.1:{server.httpd.server_port}/{KEV.name}"
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(FeedUnavailable, match=f"downloading {closed} failed after 3 tries"):
        sync("kev", closed, tmp_path)
    assert FeedRun.objects.filter(outcome=FeedRun.FAILED).count() == 2
    assert KevEntry.objects.count() == 0


def cli(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patchday.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def test_sync_export_and_import_a_bundle_and_refuse_a_tampered_one(
    server: FeedServer, child_env: dict[str, str], tmp_path: Path
) -> None:
    kev = server.serve(f"/kev/{KEV.name}", KEV)
    epss = server.serve(f"/epss/{EPSS.name}", EPSS)
    osv = server.serve(f"/Debian/{OSV.name}", OSV)
    broken = server.url("/nvd/missing.json")
    env = {**child_env, "PATCHDAY_DATA_DIR": str(tmp_path / "data"), "PATCHDAY_SECRET_KEY": "k" * 40}
    env["PATCHDAY_FEED_URLS"] = f"kev={kev},epss={epss},osv={osv},nvd={broken}"

    synced = cli(env, "feeds", "sync")
    assert synced.returncode == 2, synced.stdout + synced.stderr  # nvd failed; the others were not blocked
    assert "failed nvd" in synced.stdout
    assert f"kev {kev}: 200 added" in synced.stdout
    assert {r.source: r.outcome for r in FeedRun.objects.exclude(source="nvd")} == dict.fromkeys(
        ("kev", "epss", "osv"), FeedRun.SUCCEEDED
    )
    again = cli(env, "feeds", "sync", "kev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "not modified" in again.stdout

    bundle = tmp_path / "bundle"
    exported = cli(env, "feeds", "export", bundle)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())["files"]
    assert {m["source"] for m in manifest} == {"kev", "epss", "osv"}
    for entry in manifest:
        assert hashlib.sha256((bundle / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert next(m for m in manifest if m["source"] == "epss")["data_date"] == "2026-08-16"

    KevEntry.objects.all().delete()
    EpssScore.objects.all().delete()
    tampered = tmp_path / "tampered"
    subprocess.run(["cp", "-r", bundle, tampered], check=True)
    epss_file = next(m["file"] for m in manifest if m["source"] == "epss")
    with (tampered / epss_file).open("ab") as handle:
        handle.write(b"\0")
    runs_before = FeedRun.objects.count()
    refused = cli(env, "feeds", "import", tampered)
    assert refused.returncode == 2
    assert "does not match its SHA-256" in refused.stdout
    assert epss_file.split("/")[-1] in refused.stdout
    assert FeedRun.objects.count() == runs_before  # nothing was even attempted
    assert KevEntry.objects.count() == 0

    imported = cli(env, "feeds", "import", bundle)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert KevEntry.objects.count() == 200
    assert EpssScore.objects.count() > 0
    assert FeedRun.objects.filter(origin__startswith="bundle:", outcome=FeedRun.SUCCEEDED).count() == 3


@pytest.mark.django_db
def test_the_worker_sync_task_imports_each_source_and_a_failing_one_blocks_none(
    server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    from patchday.settings import load_settings
    from patchday.worker.tasks import sync_feeds

    pypa = tmp_path / "pypa-advisory-database.tar.xz"
    with tarfile.open(pypa, "w:xz") as archive:
        for file in sorted((FEEDS / "osv" / "pypa").rglob("*.yaml")):
            add_member(archive, f"vulns/{file.parent.name}/{file.name}", file.read_bytes())
        add_member(archive, "vulns/broken/PYSEC-0000-1.yaml", b"id: PYSEC-0000-1\nmodified: never\n")
    urls = {  # the failing sources come first: they must not stop the ones after them
        "nvd": server.url("/nvd/gone.json"),
        "cve5": server.serve("/cve5/records.json", FIXTURES / "feeds" / "epss-first-header.csv"),  # wrong content
        "kev": server.serve(f"/kev/{KEV.name}", KEV),
        "epss": server.serve(f"/epss/{EPSS.name}", EPSS),
        "osv": server.serve(f"/pypi/{pypa.name}", pypa),
    }
    monkeypatch.setenv("PATCHDAY_FEED_URLS", ",".join(f"{source}={url}" for source, url in urls.items()))
    monkeypatch.setenv("PATCHDAY_DATA_DIR", str(tmp_path / "data"))
    load_settings.cache_clear()  # the process reads its settings once
    request.addfinalizer(load_settings.cache_clear)

    with caplog.at_level("WARNING", logger="patchday.worker.tasks"):
        report = sync_feeds.call()

    assert report["nvd"].startswith("failed: ")
    assert "404" in report["nvd"]
    assert report["cve5"].startswith("failed: ")
    assert "epss data, not cve5" in report["cve5"]
    assert {s: report[s] for s in ("kev", "epss", "osv")} == dict.fromkeys(("kev", "epss", "osv"), FeedRun.SUCCEEDED)
    assert KevEntry.objects.count() == 200
    assert EpssScore.objects.count() == 2000
    osv = FeedRun.objects.get(source="osv")
    assert (osv.added, len(osv.skipped)) == (5, 1)  # the malformed record is left out, listed, and logged
    assert "PYSEC-0000-1.yaml" in caplog.text
    assert "feed sync of nvd" in caplog.text
    assert (tmp_path / "data" / "feeds" / "kev" / KEV.name).read_bytes() == KEV.read_bytes()

    again = sync_feeds.call(strict=True)  # unchanged files are not downloaded again, so strict changes nothing
    assert {s: again[s] for s in ("kev", "epss", "osv")} == dict.fromkeys(("kev", "epss", "osv"), FeedRun.SUCCEEDED)
    assert FeedRun.objects.filter(source="osv", added=0, unchanged=0).count() == 1  # 304 Not Modified

    (tmp_path / "data" / "feeds" / "osv" / f"{pypa.name}.meta.json").unlink()  # forget the ETag: download again
    strict = sync_feeds.call(strict=True)
    assert strict["osv"].startswith("failed: ")
    assert "PYSEC-0000-1.yaml" in strict["osv"]
    assert FeedRun.objects.filter(source="osv").values_list("outcome", flat=True)[0] == FeedRun.FAILED
    assert Advisory.objects.count() == 5  # the previous data stays
