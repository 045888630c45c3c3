"""`patchday up` as README's first command runs it: migrate, admin password printed once, bundled data,
this machine enrolled, dashboard and API served; the printed admin can sign in; Ctrl+C stops it all."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_up_serves_a_login_page_where_the_printed_admin_signs_in(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        PATCHDAY_DATA_DIR=str(tmp_path),
        PATCHDAY_DATABASE_URL=f"sqlite:///{tmp_path / 'up.sqlite3'}",  # its own database, whatever the suite uses
        PATCHDAY_LISTEN=f"127.0.0.1:{port}",
        PATCHDAY_WEB_WORKERS="1",
    )
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(
            [sys.executable, "-m", "patchday.cli.main", "up"], stdout=output, stderr=subprocess.STDOUT, env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert up.poll() is None, log.read_text()
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=2) as ready:
                        if ready.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            printed = log.read_text()
            password = re.search(r"Created account 'admin' with password: (\S+)", printed)
            assert password, printed
            assert "this machine is in the fleet" in printed or "this machine was not enrolled" in printed
            assert "loaded bundled feed snapshot: kev: 1674 records" in printed

            jar = http.cookiejar.CookieJar()
            browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            login_page = browser.open(f"{base}/login/").read().decode()
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
            assert token
            form = urllib.parse.urlencode(
                {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": password.group(1)}
            ).encode()
            request = urllib.request.Request(f"{base}/login/", data=form, headers={"Referer": f"{base}/login/"})
            overview = browser.open(request).read().decode()
            assert "Signed in as" in overview
            assert "admin" in overview
        finally:
            up.send_signal(signal.SIGINT)
            try:
                code = up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                raise
    assert code == 0, log.read_text()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
