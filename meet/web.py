"""The web process: daphne serving HTTP and WebSocket, over TLS when asked.

Browsers allow camera and microphone only on https or localhost, so anyone joining from
another machine needs TLS: TLS_CERT_FILE + TLS_KEY_FILE serve a given certificate, and
MEET_TLS=true alone serves a self-signed one generated into var/tls/ on first use.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import environ

env = environ.Env()


@dataclass(frozen=True)
class WebEndpoint:
    host: str
    port: int
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    @property
    def url(self) -> str:
        return served_url(self.host, self.port, tls=self.tls) + "/"

    def daphne_endpoint(self) -> str:
        host = self.host.replace(":", r"\:")
        if not self.tls:
            return f"tcp:port={self.port}:interface={host}"
        return (
            f"ssl:port={self.port}:interface={host}"
            f":privateKey={self.key_file}:certKey={self.cert_file}"
        )


def served_url(host: str, port: int, *, tls: bool) -> str:
    """The address `make run` prints for HOST/PORT (no trailing slash): "localhost" for the
    loopback and wildcard addresses, brackets around an IPv6 address."""
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    if ":" in shown_host and not shown_host.startswith("["):
        shown_host = f"[{shown_host}]"
    return f"{'https' if tls else 'http'}://{shown_host}:{port}"


def configured_served_url() -> str:
    """served_url() for the environment's HOST, PORT and TLS switches, without making a
    certificate (meet.settings reads it for SITE_URL's fallback)."""
    tls = env.bool("MEET_TLS", default=False) or bool(
        env.str("TLS_CERT_FILE", default="") and env.str("TLS_KEY_FILE", default="")
    )
    return served_url(env.str("HOST", default="127.0.0.1"), env.int("PORT", default=8000), tls=tls)


def configured_endpoint(var_dir: Path) -> WebEndpoint:
    host = env.str("HOST", default="127.0.0.1")
    port = env.int("PORT", default=8000)
    cert = env.str("TLS_CERT_FILE", default="")
    key = env.str("TLS_KEY_FILE", default="")
    if cert and key:
        return WebEndpoint(host, port, Path(cert), Path(key))
    if env.bool("MEET_TLS", default=False):
        cert_path, key_path = self_signed_certificate(var_dir / "tls", host)
        return WebEndpoint(host, port, cert_path, key_path)
    return WebEndpoint(host, port)


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for localhost, this host name and HOST; made once, then reused."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName(socket.gethostname()),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meet (self-signed)")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    from django.conf import settings

    endpoint = configured_endpoint(settings.VAR_DIR)
    # No --proxy-headers: daphne would believe X-Forwarded-For from anyone. meet.asgi's
    # TrustedProxyMiddleware reads it from MEET_TRUSTED_PROXIES only.
    command = [
        "daphne",
        "-e",
        endpoint.daphne_endpoint(),
        "meet.asgi:application",
    ]
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
