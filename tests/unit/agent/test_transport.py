"""JSON over HTTP(S): URL policy, TLS verification with a custom CA, errors, headers, no redirects."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchday.agent import USER_AGENT
from patchday.agent.errors import ConfigError, ServerRefused, ServerUnavailable
from patchday.agent.transport import Transport, check_server_url, is_loopback

from .conftest import HOST_TOKEN, StubServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://patchday.example.com", "https://patchday.example.com"),
        ("https://patchday.example.com:8443/", "https://patchday.example.com:8443"),
        ("https://example.com/patchday/", "https://example.com/patchday"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_usable_server_urls_are_normalised(url: str, expected: str) -> None:
    assert check_server_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://patchday.example.com", "refusing plain http"),
        ("http://10.0.0.5:8080", "refusing plain http"),
        ("ftp://patchday.example.com", "must look like"),
        ("patchday.example.com", "must look like"),
        ("https://user:pw@patchday.example.com", "user name or password"),
        ("https://patchday.example.com/?x=1", "query"),
        ("https://patchday.example.com/#f", "query or fragment"),
        ("https://patchday.example.com/a b", "whitespace"),
        ("https://patchday.example.com/\n", "whitespace"),
        ("https://patchday.example.com:99999", "not a valid URL"),
        ("", "empty"),
    ],
)
def test_unusable_server_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_server_url(url)


def test_plain_http_elsewhere_needs_the_explicit_flag() -> None:
    assert check_server_url("http://10.0.0.5:8080", insecure_http=True) == "http://10.0.0.5:8080"


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.9")
    assert is_loopback("::1")
    assert is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("localhost.example.com")


def test_requests_carry_json_user_agent_and_bearer_token(stub_server: StubServer) -> None:
    status, answer = Transport(stub_server.url).request(
        "POST", "/api/v1/agent/checkin", {"sequence": 1, "digest": "d", "agent_version": "x"}, token=HOST_TOKEN
    )
    assert (status, answer["inventory_wanted"]) == (200, True)
    sent = stub_server.requests[0]
    assert sent.headers["User-Agent"] == USER_AGENT
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == f"Bearer {HOST_TOKEN}"
    assert sent.body == {"sequence": 1, "digest": "d", "agent_version": "x"}


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_mean_try_again_later(stub_server: StubServer, status: int) -> None:
    stub_server.failures.append((status, {"error": {"code": "x", "message": "down"}}))
    with pytest.raises(ServerUnavailable, match=f"HTTP {status}"):
        Transport(stub_server.url).request("POST", "/api/v1/agent/checkin", {}, token=HOST_TOKEN)


def test_a_4xx_is_a_refusal_carrying_the_error_document(stub_server: StubServer) -> None:
    stub_server.failures.append((422, {"error": {"code": "invalid", "message": "bad digest", "field": "digest"}}))
    with pytest.raises(ServerRefused, match=r"HTTP 422: bad digest \(field digest\)") as caught:
        Transport(stub_server.url).request("POST", "/api/v1/agent/checkin", {}, token=HOST_TOKEN)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, "invalid", "digest")


def test_redirects_are_not_followed(stub_server: StubServer) -> None:
    stub_server.failures.append((302, {"location": "http://elsewhere.example/steal"}))
    with pytest.raises(ServerRefused, match=r"redirects to 'http://elsewhere\.example/steal'"):
        Transport(stub_server.url).request("POST", "/api/v1/agent/checkin", {}, token=HOST_TOKEN)
    assert len(stub_server.requests) == 1


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with pytest.raises(ServerUnavailable, match="failed"):
        Transport("http://127.0.0.1:9", timeout=2).request("POST", "/api/v1/agent/checkin", {})


def test_a_server_that_does_not_answer_in_time_is_unavailable() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(ServerUnavailable, match="timed out"):
            Transport(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5).request("GET", "/")
    finally:
        listener.close()


# -- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate from a throwaway CA: (url, CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"
    )
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", directory / "ca.pem"
    server.shutdown()
    server.server_close()


def test_an_untrusted_certificate_is_refused(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    with pytest.raises(ServerUnavailable, match="TLS certificate is not trusted"):
        Transport(url, timeout=5).request("GET", "/")


def test_a_custom_ca_file_is_trusted(tls_server: tuple[str, Path]) -> None:
    url, ca_file = tls_server
    assert Transport(url, ca_file=str(ca_file), timeout=5).request("GET", "/") == (200, {"ok": True})


def test_a_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA file"):
        Transport("https://patchday.example", ca_file=str(tmp_path / "nope.pem"))


def test_the_field_also_comes_from_the_apis_details_list(stub_server: StubServer) -> None:
    error = {"code": "invalid_input", "message": "bad", "details": [{"field": "inventory.packages", "message": "x"}]}
    stub_server.failures.append((422, {"error": error}))
    with pytest.raises(ServerRefused, match=r"\(field inventory\.packages\)") as caught:
        Transport(stub_server.url).request("PUT", "/api/v1/agent/inventory", {}, token=HOST_TOKEN)
    assert caught.value.field == "inventory.packages"
