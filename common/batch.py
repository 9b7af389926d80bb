"""What a per-image batch job (SPM, SGSCN) needs to share one output root safely.

* ``settings.json`` records the settings that shape the outputs; a resumed run (``--skip_existing``)
  with other settings is refused, so one folder never mixes maps made two ways.
* ``.lock`` names the process writing the root; a second live writer (another process, or another
  ``tools/dist_spm.sh`` job) is refused, while the ranks of one torchrun job share it.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.io import InputError, pid_alive, write_bytes

LOCK_NAME = ".lock"
SETTINGS_NAME = "settings.json"


def _job_id() -> str:
    """Shared by the ranks of one torchrun job, empty for a plain process."""
    return os.environ.get("TORCHELASTIC_RUN_ID", "")


def _describe(diff: dict[str, tuple]) -> str:
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(diff.items()))


@contextmanager
def claim_output_root(root: str | os.PathLike, settings: dict, resume: bool, rank: int = 0) -> Iterator[None]:
    """Hold ``root`` for this run: refuse a live writer of another job and a resume with other settings,
    record ``settings`` (rank 0) and release the lock on exit.

    Raises:
        InputError: the root is being written by another live process, or ``resume`` with settings
            that differ from the recorded ones (the differing keys are named).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = root / LOCK_NAME
    me = {"host": socket.gethostname(), "pid": os.getpid(), "job": _job_id()}
    if lock.exists():
        try:
            owner = json.loads(lock.read_text())
        except (OSError, ValueError):
            owner = {}
        same_job = bool(me["job"]) and owner.get("job") == me["job"]
        if (owner.get("host") == me["host"] and isinstance(owner.get("pid"), int) and owner["pid"] != me["pid"]
                and pid_alive(owner["pid"]) and not same_job):
            raise InputError(root, f"another run (pid {owner['pid']}) is writing here; wait for it to finish "
                                   "or use another output folder")
    settings = json.loads(json.dumps(settings))
    recorded = root / SETTINGS_NAME
    if recorded.exists() and resume:
        try:
            old = json.loads(recorded.read_text())
        except (OSError, ValueError):
            old = {}
        diff = {k: (old.get(k), settings.get(k)) for k in set(old) | set(settings) if old.get(k) != settings.get(k)}
        if diff:
            raise InputError(recorded, f"the outputs here were made with other settings ({_describe(diff)}); "
                                       "resume with the same settings or use another output folder")
    owned = False
    if rank == 0:
        write_bytes(lock, json.dumps(me).encode())
        owned = True
        write_bytes(recorded, (json.dumps(settings, indent=1, sort_keys=True) + "\n").encode())
    try:
        yield
    finally:
        if owned:
            try:
                if json.loads(lock.read_text()).get("pid") == me["pid"]:
                    lock.unlink()
            except (OSError, ValueError):
                pass
