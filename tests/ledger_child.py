"""Child processes for the ledger crash and concurrency tests (a script; pytest does not collect it).

``python tests/ledger_child.py load URL KEY WORKER COUNT THREADS`` appends COUNT records from
THREADS threads and prints each receipt as one JSON line, written after ``append`` returned.

``python tests/ledger_child.py zygote`` imports everything once, then serves commands on stdin so
that the crash test can start many writers cheaply: ``run RECEIPTS URL KEY`` forks a writer that
appends forever from 4 threads, writing each acknowledged receipt to the file RECEIPTS with one
``write(2)`` (in the kernel once it returns: a SIGKILL cannot lose it), and answers its pid;
``reap PID`` waits for that (killed) writer and answers ``reaped``; ``kek PROGRESS URL KEY KEK``
forks a process that rotates the vault's KEK forever (recorded in the ledger), writing ``ready``
and then each completed rotation's new KEK id to PROGRESS, and answers its pid.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from auditinf.ledger import Ledger, load_signer
from auditinf.ledger.kek_rotation import rotate_kek
from auditinf.ledger.vault import Vault

NAME = "test.auditinf/ledger"


def load(url: str, key: str, worker: str, count: int, threads: int, out_fd: int, every: int = 50) -> None:
    ledger = Ledger(url, load_signer(Path(key), NAME), checkpoint_every_records=every)

    def run(first: int) -> None:
        for i in range(first, count, threads):
            receipt = ledger.append({"kind": "load", "worker": worker, "i": i, "amount": str(2**200 + i)})
            os.write(out_fd, (json.dumps(receipt.to_dict()) + "\n").encode())

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    ledger.close()


def kek_rotations(progress: str, url: str, key: str, kek: str) -> None:
    ledger = Ledger(url, load_signer(Path(key), NAME))
    vault = Vault(ledger.engine, Path(kek))
    fd = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(fd, b"ready\n")
    while True:
        os.write(fd, (rotate_kek(vault, ledger).new_kek_id + "\n").encode())


def zygote() -> None:
    for line in sys.stdin:
        command, *args = line.split()
        if command == "run":
            receipts, url, key = args
            pid = os.fork()
            if pid == 0:  # the writer: runs until it is killed
                fd = os.open(receipts, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    load(url, key, str(os.getpid()), 10**9, 4, fd, every=7)
                finally:
                    os._exit(0)
            print(pid, flush=True)
        elif command == "kek":
            pid = os.fork()
            if pid == 0:
                try:
                    kek_rotations(*args)
                finally:
                    os._exit(0)
            print(pid, flush=True)
        elif command == "reap":
            os.waitpid(int(args[0]), 0)
            print("reaped", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "load":
        _, _, url, key, worker, count, threads = sys.argv
        load(url, key, worker, int(count), int(threads), sys.stdout.fileno())
    else:
        zygote()
