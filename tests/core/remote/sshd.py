"""Real OpenSSH "nodes" for the multi-node tests: an sshd on a loopback port made by the test,
key auth with a key the test generates, and an ssh config that reaches it."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def need_ssh() -> None:
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server or client not installed (apt-get install openssh-server openssh-client)")


@dataclass
class Sshd:
    name: str
    port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class SshNodes:
    """Keys, an ssh config with one Host per node, and one sshd per node (all on this machine)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.key = root / "id_ed25519"
        self.host_key = root / "host_ed25519"
        for key in (self.key, self.host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.authorized = root / "authorized_keys"
        shutil.copy(self.key.with_suffix(".pub"), self.authorized)
        os.chmod(self.authorized, 0o600)
        self.config = root / "ssh_config"
        self.nodes: dict[str, Sshd] = {}

    def add(self, name: str) -> Sshd:
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)  # sshd as root insists on its privilege separation dir
        port = free_port()
        conf = self.root / f"sshd_{name}.conf"
        conf.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\nPidFile {self.root}/sshd_{name}.pid\n"
            f"AuthorizedKeysFile {self.authorized}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n"
            f"AllowUsers {getpass.getuser()}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
            # the node's environment is what a login gives: our test marker must not leak in
            "PermitUserEnvironment no\n"
        )
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=open(self.root / f"sshd_{name}.log", "wb"))

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"sshd exited: {(self.root / f'sshd_{name}.log').read_text()}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=30, what=f"sshd {name} listening")
        node = Sshd(name, port, proc)
        self.nodes[name] = node
        self._write_config()
        return node

    def _write_config(self) -> None:
        blocks = [f"Host {n.name}\n  HostName 127.0.0.1\n  Port {n.port}\n  User {getpass.getuser()}\n"
                  f"  IdentityFile {self.key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                  "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n" for n in self.nodes.values()]
        self.config.write_text("\n".join(blocks))

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
