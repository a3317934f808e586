"""A lab certificate authority made per run: TLS for the lab's loopback servers (moto's S3).

pgBackRest's S3 driver speaks only TLS and verifies the server's certificate, so the lab's
moto serves https with a certificate from this CA, and pgBackRest trusts the CA file
(``repo1-storage-ca-file``). Nothing here is trusted system-wide: the CA lives in the
server's temp dir, its key never leaves it, and everything goes when that dir is removed.

    ca = LabCA.create(folder)      # ca.crt, server.crt, server.key (all 0600; the CA's key is
                                   # used once to sign and never written)
    ca.server_cert, ca.server_key  # for moto --ssl-cert/--ssl-key
    ca.ca_cert                     # what a client trusts
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names a lab server answers on: loopback only.
SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1",)
# A run's CA; a clock skew of an hour is still fine. Valid past the furthest the lab moves the
# deployment's clock (repo2's 90-day retention): pgBackRest under libfaketime checks it on that clock.
VALID_FOR = datetime.timedelta(days=120)


def _write_private(path: Path, data: bytes) -> None:
    """Create path exclusively, mode 0600 from the start, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "drill lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class LabCA:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @classmethod
    def create(cls, folder: str | os.PathLike) -> LabCA:
        """A new CA and a server certificate for localhost / 127.0.0.1, written into folder."""
        ca = cls(Path(folder))
        now = datetime.datetime.now(datetime.UTC)
        not_before = now - datetime.timedelta(hours=1)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("drill lab CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(SERVER_NAMES[0]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        private = serialization.PrivateFormat.PKCS8
        plain = serialization.NoEncryption()
        _write_private(ca.ca_cert, ca_cert.public_bytes(pem))
        _write_private(ca.server_key, server_key.private_bytes(pem, private, plain))
        _write_private(ca.server_cert, server_cert.public_bytes(pem))
        return ca
