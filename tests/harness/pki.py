"""Certificates and kubeconfigs for one throw-away test control plane.

Every harness cluster gets its own CA, so two clusters side by side can never accept each other's
clients. Keys are ECDSA P-256 (generated in milliseconds, which keeps bring-up fast); the
service-account signing key is ECDSA as well (kube-apiserver signs ES256 tokens with it).

Identities, as RBAC's bootstrap policy expects them:
  admin               CN=sluice-admin, O=system:masters   (tests, kubectl, kwok, the process node)
  controller-manager  CN=system:kube-controller-manager  (with --use-service-account-credentials)
  scheduler           CN=system:kube-scheduler

Nothing here is fit for anything but a test machine: no key protection, ten-year validity.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The first address of the service CIDR is the `kubernetes` Service's ClusterIP.
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Pki:
    """Paths of everything the components are started with."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    sa_key: Path
    sa_pub: Path
    admin_cert: Path
    admin_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(builder: x509.CertificateBuilder, ca_key) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    builder = (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
    )
    return builder.sign(ca_key, hashes.SHA256())


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = _name("sluice-test-ca")
    cert = _sign(
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ),
        key,
    )
    return key, cert


def _leaf(ca_key, ca_cert, cn: str, orgs: tuple[str, ...] = (), sans: list | None = None):
    key = _key()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if sans else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, _sign(builder, ca_key)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(pki_dir: Path) -> Pki:
    """Create a CA, the API server's serving cert, the SA key pair and the admin client cert."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca()
    sans = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address(KUBERNETES_SERVICE_IP)),
        x509.DNSName("localhost"),
    ] + [
        x509.DNSName(n)
        for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                  "kubernetes.default.svc.cluster.local")
    ]
    api_key, api_cert = _leaf(ca_key, ca_cert, "kube-apiserver", sans=sans)
    admin_key, admin_cert = _leaf(ca_key, ca_cert, "sluice-admin", ("system:masters",))
    sa_key = _key()
    d = pki_dir
    return Pki(
        dir=d,
        ca_cert=_write(d / "ca.crt", _cert_pem(ca_cert)),
        ca_key=_write(d / "ca.key", _key_pem(ca_key)),
        apiserver_cert=_write(d / "apiserver.crt", _cert_pem(api_cert)),
        apiserver_key=_write(d / "apiserver.key", _key_pem(api_key)),
        sa_key=_write(d / "sa.key", _key_pem(sa_key)),
        sa_pub=_write(d / "sa.pub", sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
        admin_cert=_write(d / "admin.crt", _cert_pem(admin_cert)),
        admin_key=_write(d / "admin.key", _key_pem(admin_key)),
    )


def write_kubeconfig(path: Path, pki: Pki, server: str, user: str,
                     cert_pem: bytes | None = None, key_pem: bytes | None = None) -> Path:
    """A self-contained kubeconfig (certs embedded) for `user`; admin's cert unless given."""
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    cert_pem = cert_pem or pki.admin_cert.read_bytes()
    key_pem = key_pem or pki.admin_key.read_bytes()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sluice-local", "cluster": {
            "server": server, "certificate-authority-data": b64(pki.ca_cert.read_bytes())}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": "sluice-local", "context": {"cluster": "sluice-local", "user": user}}],
        "current-context": "sluice-local",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def write_component_kubeconfig(path: Path, pki: Pki, server: str, cn: str) -> Path:
    """A kubeconfig for a control-plane component identified by CN (no groups)."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key, cert = _leaf(ca_key, ca_cert, cn)
    return write_kubeconfig(path, pki, server, cn, _cert_pem(cert), _key_pem(key))


def write_serving_cert(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> bytes:
    """A fresh CA and a serving certificate for `hosts` (IP addresses or DNS names), written as
    tls.crt and tls.key into `directory` (the layout of a mounted kubernetes.io/tls Secret).
    Returns the CA certificate (PEM), e.g. for a webhook configuration's caBundle."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca()
    sans = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    key, cert = _leaf(ca_key, ca_cert, hosts[0], sans=sans)
    _write(directory / "tls.crt", _cert_pem(cert))
    _write(directory / "tls.key", _key_pem(key))
    return _cert_pem(ca_cert)
