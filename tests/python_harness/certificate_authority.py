"""A certificate authority made at test time with the `openssl` command, and the server
certificates it issues for `localhost` and 127.0.0.1: what the suites give an HTTPS
listener (`[[listeners]]` `tls_certificate_file` and `tls_key_file`) and the clients they
point at it. Every file is written into a directory the test owns; no private key is in the
repository.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

OPENSSL_TIMEOUT_SECONDS = 60
SERVER_CERTIFICATE_EXTENSIONS = """subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


def _openssl(directory: Path, *arguments: str) -> None:
    completed = subprocess.run(
        ["openssl", *arguments], cwd=directory, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise AssertionError(f"openssl {' '.join(arguments)} failed: {completed.stderr}")


class TestCertificateAuthority:
    """A CA in `directory` (`ca.pem`, what clients trust, and its key)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        _openssl(
            directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", "/CN=keygate test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        self.certificate_file = directory / "ca.pem"

    def issue(self, name: str) -> tuple[Path, Path]:
        """A server certificate for localhost and 127.0.0.1: (`<name>.pem`, `<name>.key`)."""
        (self.directory / f"{name}.ext").write_text(SERVER_CERTIFICATE_EXTENSIONS, encoding="utf-8")
        _openssl(
            self.directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=localhost", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        )
        _openssl(
            self.directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        )
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.certificate_file))


def certificate_der(certificate_file: Path) -> bytes:
    """The DER bytes of the first certificate of a PEM file."""
    return ssl.PEM_cert_to_DER_cert(certificate_file.read_text(encoding="ascii"))
