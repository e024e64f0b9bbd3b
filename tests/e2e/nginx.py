"""Real nginx running the shipped load-balancer configuration (deploy/nginx) in a test.

The shipped files are copied into a temporary folder as they are, with four changes a
test needs: the instances' addresses (``seawall-upstreams.conf``), the listening port,
the access log's path, and a certificate for 127.0.0.1 made with openssl for the run.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
_ACCESS_LINE = re.compile(
    r'"\S+ (?P<path>\S+) [^"]*" .*upstream=(?P<upstream>[^ ,]+(?:, [^ ,]+)*) '
    r'.*session="(?P<session>[^"]*)" request_id=(?P<id>\S+)'
)


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (``seawall.crt``, ``seawall.key``)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(folder / "seawall.key"), "-out", str(folder / "seawall.crt")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder / "seawall.crt"


@dataclass
class Nginx:
    """A running nginx: its HTTPS address, certificate and access log."""

    process: subprocess.Popen[bytes]
    url: str
    certificate: Path
    access_log: Path
    error_log: Path

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTPS client that trusts this nginx's certificate."""
        trust = ssl.create_default_context(cafile=str(self.certificate))
        return httpx.Client(base_url=self.url, verify=trust, timeout=timeout)

    def served(self) -> list[Served]:
        """Each request logged so far, in order."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [
            Served(match["path"], match["upstream"].split(", ")[-1], match["session"], match["id"])
            for line in lines
            if (match := _ACCESS_LINE.search(line))
        ]


@dataclass(frozen=True)
class Served:
    """One line of the access log: the path, the instance that answered (the last one
    tried, when nginx retried), the session id and Seawall's request id (``-``: none)."""

    path: str
    instance: str
    session: str
    request_id: str


def configure(folder: Path, instances: Sequence[str], port: int) -> Path:
    """The shipped configuration in ``folder``, pointed at ``instances`` (host:port)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("nginx.conf", "seawall.conf"):
        shutil.copy(SHIPPED / name, folder / name)
    site = folder / "seawall.conf"
    text = site.read_text()
    for shipped, ours in (
        ("listen 8443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/var/log/nginx/access.log", str(folder / "access.log")),
    ):
        assert shipped in text, f"deploy/nginx/seawall.conf no longer says {shipped!r}"
        text = text.replace(shipped, ours)
    site.write_text(text)
    upstreams = (SHIPPED / "seawall-upstreams.conf").read_text()
    options = re.search(r"server \S+ (.*);", upstreams)
    assert options, "deploy/nginx/seawall-upstreams.conf lists no server"
    (folder / "seawall-upstreams.conf").write_text(
        "".join(f"server {address} {options[1]};\n" for address in instances)
    )
    make_certificate(folder / "certs")
    return folder / "nginx.conf"


@contextlib.contextmanager
def running_nginx(folder: Path, instances: Sequence[str]) -> Iterator[Nginx]:
    """nginx with the shipped configuration in front of ``instances``, for the block."""
    port = free_port()
    config = configure(folder, instances, port)
    settings = f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'} info;"
    check = subprocess.run(
        [NGINX, "-t", "-c", str(config), "-g", settings], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-g", settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nginx = Nginx(
        process=process,
        url=f"https://127.0.0.1:{port}",
        certificate=folder / "certs" / "seawall.crt",
        access_log=folder / "access.log",
        error_log=folder / "error.log",
    )
    try:
        _wait_listening(nginx)
        yield nginx
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(nginx: Nginx, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nginx.process.poll() is not None:
            pytest.fail(f"nginx exited ({nginx.process.returncode}): {nginx.error_log.read_text()}")
        try:
            with nginx.client(timeout=1.0) as client:
                client.get("/health/live")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen in time: {nginx.error_log.read_text()}")
