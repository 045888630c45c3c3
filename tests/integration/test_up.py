"""`patchday up` as README's first command runs it: migrate, admin password printed once, bundled data,
this machine enrolled, dashboard and API served; the printed admin can sign in; Ctrl+C stops it all."""

from __future__ import annotations

import http.cookiejar
import json
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
from typing import Any

import pytest


def _local_host(browser: urllib.request.OpenerDirector, base: str, log: Path) -> dict[str, Any]:
    """This machine's host record, once the local agent has sent its first inventory."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hosts = json.loads(browser.open(f"{base}/api/v1/hosts?mode=agent").read())["items"]
        if hosts and hosts[0]["inventory_at"]:
            return dict(json.loads(browser.open(f"{base}/api/v1/hosts/{hosts[0]['name']}").read()))
        time.sleep(1)
    raise AssertionError("the local agent never sent an inventory:\n" + log.read_text())


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
            assert "this machine is in the fleet through the local agent" in printed
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
            local = _local_host(browser, base, log)
            installed = subprocess.run(
                ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\\n"], capture_output=True, text=True, check=True
            ).stdout.split("\n")
            assert local["management_mode"] == "agent"
            assert local["package_count"] >= sum(1 for s in installed if s.startswith(("ii", "iU", "iF", "hi")))
            pending = json.loads(browser.open(f"{base}/api/v1/hosts/{local['name']}/pending-updates").read())
            assert len(pending) == local["pending_security"] + local["pending_regular"]
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
