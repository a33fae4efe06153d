"""A real Postfix from Debian's package, as its own instance: its own configuration, queue
and ports in a folder of its own. The system's Postfix is never configured nor started."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

POSTFIX = Path("/usr/sbin/postfix")

needs_postfix = pytest.mark.skipif(
    not POSTFIX.exists(),
    reason="Postfix is not installed (apt-get install postfix); .ci/run installs it",
)

# No chroot: the instance's queue lives in a test folder, not in a prepared jail.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    def __init__(self, port: int, main_cf: str) -> None:
        # Not under pytest's folder: Postfix's own user must reach its data, and that one is
        # private to root.
        folder = Path(tempfile.mkdtemp(prefix="care-intro-postfix-"))
        folder.chmod(0o755)
        self.folder, self.port = folder, port
        self.config = folder / "etc"
        self.log = folder / "postfix.log"
        self.config.mkdir(parents=True)
        (folder / "spool").mkdir()
        (folder / "lib").mkdir()
        # Postfix's own user keeps its data there (locks, caches), as under /var/lib/postfix.
        owner = pwd.getpwnam("postfix")
        os.chown(folder / "lib", owner.pw_uid, owner.pw_gid)
        (self.config / "master.cf").write_text(MASTER_CF.format(port=port))
        (self.config / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {folder / 'spool'}",
                    f"data_directory = {folder / 'lib'}",
                    "mail_owner = postfix",
                    "setgid_group = postdrop",
                    "inet_interfaces = 127.0.0.1",
                    "inet_protocols = ipv4",
                    "myhostname = mx.postfix-test.example",
                    "mydestination =",
                    "alias_maps =",
                    "alias_database =",
                    f"maillog_file_prefixes = {folder}",
                    f"maillog_file = {self.log}",
                    "smtp_dns_support_level = disabled",
                    main_cf,
                ]
            )
            + "\n"
        )

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTFIX), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> None:
        started = self.postfix("start")
        if started.returncode != 0:
            raise AssertionError(f"postfix did not start: {started.stderr}{self.log_text()}")

    def stop(self) -> None:
        pid = self.master_pid()
        self.postfix("stop")
        if pid is None:
            return
        for _ in range(100):  # bounded: ten seconds for the master to go
            if not alive(pid):
                break
            time.sleep(0.1)
        # The master leads its own process group: whatever of ours is left goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def master_pid(self) -> int | None:
        try:
            return int((self.folder / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def queue(self) -> str:
        """What `postqueue -p` says this instance still holds."""
        listing = subprocess.run(
            ["/usr/sbin/postqueue", "-c", str(self.config), "-p"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return listing.stdout + listing.stderr

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
