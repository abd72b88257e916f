"""Real alert receivers for tests on 127.0.0.1: a mosquitto broker (TLS + password) and an
HTTPS webhook server, with a self-signed certificate made by ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from email.message import Message
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = Path('/usr/sbin/mosquitto')
MOSQUITTO_PASSWD = Path('/usr/bin/mosquitto_passwd')


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1/localhost; the cert doubles as the CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / 'cert.pem', folder / 'key.pem'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Mosquitto:
    """Debian's mosquitto on 127.0.0.1:<port> with TLS and one user; restartable on the same
    port, with persistence so durable subscriptions and queued messages survive a restart."""

    def __init__(self, folder: Path, username: str, password: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.cert, key = self_signed_cert(folder)
        passwords = folder / 'passwd'
        subprocess.run([str(MOSQUITTO_PASSWD), '-b', '-c', str(passwords), username, password], check=True)
        (folder / 'mosquitto.conf').write_text(
            f'listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n'
            f'certfile {self.cert}\nkeyfile {key}\npersistence true\npersistence_location {folder}/\n'
            f'log_dest file {folder}/mosquitto.log\n'
            # run as root it would switch to user mosquitto, who cannot read pytest\'s 0700 tmp dir
            'user root\n')
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([str(MOSQUITTO), '-c', str(self.folder / 'mosquitto.conf')])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f'mosquitto did not listen on {self.port}: {(self.folder / "mosquitto.log").read_text()}')

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class WebhookServer:
    """HTTPS receiver on 127.0.0.1 storing (headers, body) of every POST; stoppable and
    restartable on the same port."""

    def __init__(self, folder: Path) -> None:
        self.cert, self._key = self_signed_cert(folder)
        self.port = free_port()
        self.received: list[tuple[Message, bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f'https://127.0.0.1:{self.port}/alerts'

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers['Content-Length']))
                received.append((self.headers, body))  # case-insensitive lookup
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self._key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
