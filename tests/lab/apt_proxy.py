"""The lab's apt proxy: a small caching HTTP forward proxy bound to the lab gateway only.

It relays GET and HEAD for plain `http://` URLs on allow-listed mirror hosts and answers 403 to anything
else (no CONNECT, so no https). Files under /pool/ and /by-hash/ never change once published, so they are
cached on disk (by-hash files only after their SHA256 checks out); InRelease and the rest pass through.
Standard library only: fleet.py starts it with the machine's python3.

    apt_proxy.py --listen 10.78.0.1 --port 3142 --cache DIR --pidfile FILE --allow deb.debian.org
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.server
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import IO

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CHUNK = 1 << 16


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "patchday-lab-proxy"
    allowed: frozenset[str] = frozenset()
    cache_dir = Path()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.client_address[0]} {format % args}\n")

    def do_GET(self) -> None:
        self.relay(head=False)

    def do_HEAD(self) -> None:
        self.relay(head=True)

    def cache_path(self, url: urllib.parse.SplitResult) -> Path | None:
        """Where an immutable file is cached, or None for files that may change (or odd paths)."""
        path = url.path
        if "/pool/" not in path and "/by-hash/" not in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts) or url.query:
            return None
        return self.cache_dir / str(url.hostname) / Path(*parts)

    def relay(self, head: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in self.allowed:
            self.send_error(403, "patchday lab proxy: only the allow-listed Debian mirrors over http")
            return
        cached = self.cache_path(url)
        if cached is not None and cached.is_file():
            self.send_cached(cached, head)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if cached is not None:  # fetch whole files so they can be cached
            headers.pop("Range", None)
            headers.pop("If-Range", None)
        upstream = http.client.HTTPConnection(str(url.hostname), url.port or 80, timeout=60)
        try:
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
            upstream.request(self.command, target, headers=headers)
            response = upstream.getresponse()
        except OSError as exc:
            upstream.close()
            self.send_error(502, f"patchday lab proxy: {url.hostname} unreachable: {exc}")
            return
        try:
            self.forward(response, head, cached)
        finally:
            response.close()
            upstream.close()

    def send_cached(self, cached: Path, head: bool) -> None:
        os.utime(cached)  # recently used: fleet.py prunes files unused for a month
        self.send_response(200)
        self.send_header("Content-Length", str(cached.stat().st_size))
        self.send_header("X-Patchday-Lab-Cache", "HIT")
        self.end_headers()
        if not head:
            with cached.open("rb") as body:
                while chunk := body.read(CHUNK):
                    self.wfile.write(chunk)

    def forward(self, response: http.client.HTTPResponse, head: bool, cached: Path | None) -> None:
        length = response.getheader("Content-Length")
        has_body = not head and response.status not in (204, 304)
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if length is None and has_body:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not has_body:
            return
        keep = cached is not None and response.status == 200 and length is not None
        sink: IO[bytes] | None = None
        if keep and cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            sink = tempfile.NamedTemporaryFile(dir=cached.parent, delete=False)  # noqa: SIM115 (closed below)
        digest = hashlib.sha256()
        try:
            while chunk := response.read(CHUNK):
                self.wfile.write(chunk)
                if sink is not None:
                    sink.write(chunk)
                    digest.update(chunk)
            if sink is not None and cached is not None:
                sink.close()
                if self.is_complete(cached, Path(sink.name), length, digest.hexdigest()):
                    os.replace(sink.name, cached)
        finally:
            if sink is not None:
                sink.close()
                Path(sink.name).unlink(missing_ok=True)

    @staticmethod
    def is_complete(cached: Path, tmp: Path, length: str | None, sha256: str) -> bool:
        if length is None or tmp.stat().st_size != int(length):
            return False
        # by-hash/SHA256/<hex>: the name is the checksum, so a corrupt download is never cached.
        if cached.parent.name == "SHA256":
            return cached.name == sha256
        return True


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--allow", action="append", required=True)
    options = parser.parse_args(argv)
    options.cache.mkdir(parents=True, exist_ok=True)
    ProxyHandler.allowed = frozenset(options.allow)
    ProxyHandler.cache_dir = options.cache
    server = ProxyServer((options.listen, options.port), ProxyHandler)
    # Written only once the socket is bound, so the pidfile also says "ready".
    options.pidfile.write_text(f"{os.getpid()}\n")
    sys.stderr.write(f"patchday lab proxy on {options.listen}:{options.port}, allows {sorted(ProxyHandler.allowed)}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
