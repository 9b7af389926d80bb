"""The per-image batch job (SPM, SGSCN, PiCIE's inference): one loop, and what it needs to share one
output root safely.

* :func:`run_image_batch` runs a step per image with skip-existing, one-line errors, progress, a summary
  merged after every image, and rank sharding for ``torchrun``.

* ``settings.json`` records the settings that shape the outputs; a resumed run (``--skip_existing``)
  with other settings is refused, so one folder never mixes maps made two ways.
* ``.lock`` names the process writing the root; a second live writer (another process, or another
  ``tools/dist_spm.sh`` job) is refused, while the ranks of one torchrun job share it.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.io import InputError, error_line, is_image_file, merge_summary, pid_alive, write_bytes, write_csv

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


@dataclass
class ImageOutcome:
    """What processing one image gives the batch runner: its summary fields and warnings."""

    row: dict
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchCounts:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    files: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


# What a per-image step may raise for one bad image; anything else is a bug and stops the batch.
IMAGE_ERRORS = (InputError, OSError, RuntimeError, ValueError)


def run_image_batch(
    files: Sequence[Path],
    process: Callable[[Path, Callable[[str], None]], ImageOutcome],
    done_marker: Callable[[str], Path],
    summary: Path,
    fields: Sequence[str],
    *,
    skip_existing: bool = False,
    rank: int = 0,
    world: int = 1,
    accept: Callable[[Path], bool] = is_image_file,
    kind: str = "image",
    unit: str = "img",
) -> BatchCounts:
    """The one per-image loop of the batch jobs (SPM, SGSCN, PiCIE's inference).

    Each rank takes ``files[rank::world]``; an image whose ``done_marker(stem)`` exists is skipped with
    ``skip_existing``; ``process(path, status)`` does the work and writes the outputs (``status(text)``
    shows progress on the bar); a failure of one image is one ``error:`` line and a ``failed`` row, and
    the batch goes on. After every image the rows are merged into ``summary`` (one row per image: an
    interrupted run keeps what it finished), or into a per-rank part that rank 0 merges at the end.
    A file that ``accept`` refuses (by default: not an image file type) is a failed row.
    """
    from tqdm import tqdm

    mine = list(files[rank::world])
    counts = BatchCounts(files=len(mine))
    rows: list[dict] = []
    part = summary.parent / f".{summary.stem}.rank{rank}.csv"

    def save() -> None:
        if world == 1:
            merge_summary(summary, rows, fields)
        else:
            write_csv(part, rows, fields)

    bar = tqdm(mine, disable=None, dynamic_ncols=True, unit=unit, position=rank)
    for path in bar:
        name = path.stem
        if skip_existing and done_marker(name).exists():
            counts.skipped += 1
            continue
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            if not accept(path):
                raise InputError(path, f"not {'an' if kind[0] in 'aeiou' else 'a'} {kind} file type "
                                       f"({path.suffix or 'no extension'})")
            outcome = process(path, lambda text, name=name: bar.set_postfix_str(f"{name} {text}", refresh=False))
        except IMAGE_ERRORS as err:
            line = error_line(path, err)
            tqdm.write(f"error: {line}", file=sys.stderr)
            rows.append({"image": name, "status": "failed", "warnings": line})
            counts.failed += 1
            save()
            continue
        for warning in outcome.warnings:
            tqdm.write(f"warning: {path}: {warning}", file=sys.stderr)
        rows.append({"image": name, "status": "ok", **outcome.row,
                     "seconds": f"{time.perf_counter() - start:.2f}", "warnings": "; ".join(outcome.warnings)})
        counts.done += 1
        save()
    bar.close()
    save()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        dist.barrier()
        if rank == 0:
            parts = [summary.parent / f".{summary.stem}.rank{r}.csv" for r in range(world)]
            merge_summary(summary, [], fields, parts)
            for p in parts:
                p.unlink(missing_ok=True)
        dist.barrier()
        dist.destroy_process_group()
    return counts
