"""What this machine can do, measured in the same run as a benchmark: the practical ceiling a hot loop
is compared with."""
from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F


def conv_ceiling_gflops(channels: int, height: int, width: int, batch: int = 1, kernel: int = 3,
                        bf16: bool = False, channels_last: bool = False, device: str = "cpu",
                        repeats: int = 5, out_channels: int | None = None) -> float:
    """GFLOP/s of one ``channels -> out_channels`` (default: ``channels``) convolution's forward,
    weight-gradient and input-gradient passes at this shape, precision and memory layout (the best of
    ``repeats`` after one warm-up)."""
    out_channels = out_channels or channels
    x = torch.randn(batch, channels, height, width, device=device)
    w = torch.randn(out_channels, channels, kernel, kernel, device=device) * 0.01
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w.requires_grad_(True)
    flops = 3 * 2 * batch * height * width * channels * out_channels * kernel * kernel
    best = float("inf")
    for i in range(repeats + 1):
        x.grad = w.grad = None
        start = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, padding=kernel // 2)
        y.float().sum().backward()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        if i:
            best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


@functools.cache
def _proc_cpuinfo() -> str | None:
    """``/proc/cpuinfo`` once per process (every cached choice's key names the CPU; the CPU does not change)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_description(cpuinfo: str | None = None) -> str:
    """``'<model name>[, family F model M] (<bf16 instructions>)'`` from ``/proc/cpuinfo`` text (read
    when None; Linux)."""
    if cpuinfo is None:
        cpuinfo = _proc_cpuinfo()
        if cpuinfo is None:
            return f"{platform.processor() or platform.machine()} (instruction set unknown)"
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    if "amx_bf16" in flags:
        isa = "AMX-BF16 tiles"
    elif "avx512_bf16" in flags:
        isa = "AVX512-BF16, no AMX"
    elif "avx512f" in flags:
        isa = "AVX-512, no native bf16"
    elif "avx2" in flags:
        isa = "AVX2, no native bf16"
    else:
        isa = "no native bf16"
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields and "model" in fields:
        # hypervisors often show a generic name ("Intel(R) Xeon(R) Processor"); family and model tell CPUs apart
        name += f", family {fields['cpu family']} model {fields['model']}"
    return f"{name} ({isa})"


def cache_dir() -> Path:
    """Where measured per-machine choices are kept: ``$MSSG_CACHE_DIR``, else ``$XDG_CACHE_HOME/mssg``,
    else ``~/.cache/mssg``."""
    if os.environ.get("MSSG_CACHE_DIR"):
        return Path(os.environ["MSSG_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mssg"


def machine_key(what: str) -> str:
    """One cache key per question, CPU, instruction-set limits, torch version and thread count."""
    limits = ",".join(f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ)
    return f"{what}|{cpu_description()}|{limits}|torch {torch.__version__}|{torch.get_num_threads()} threads"


# choices already read or measured in this process, by (cache file, machine key): callers on hot paths
# (bf16 inference asks common.precision on every forward pass) then cost a dictionary lookup
_decided: dict[tuple[Path, str], str] = {}


def timed_choice(what: str, candidates: dict[str, Callable[[], None]], repeats: int = 3) -> str:
    """The fastest of ``candidates`` (name -> one timed run) on this machine, measured once and cached.

    Each candidate runs once to warm up, then ``repeats`` times, alternating so that load drifts hit
    all alike; the median decides. Candidates run with autograd on, whatever the caller's mode. The
    result is stored under :func:`cache_dir` keyed by :func:`machine_key`, so later runs on the same
    machine reuse it without measuring.
    """
    key = machine_key(what)
    path = cache_dir() / "choices.json"
    if _decided.get((path, key)) in candidates:  # asked before in this process: no file read
        return _decided[path, key]
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get(key) in candidates:
        _decided[path, key] = known[key]
        return known[key]
    times: dict[str, list[float]] = {name: [] for name in candidates}
    # The first caller may be an inference path (no_grad, inference_mode): candidates that time a
    # training step must backpropagate whatever the caller's mode.
    with torch.inference_mode(False), torch.enable_grad():
        for i in range(repeats + 1):
            for name, run in candidates.items():
                start = time.perf_counter()
                run()
                if i:
                    times[name].append(time.perf_counter() - start)
    best = min(candidates, key=lambda name: statistics.median(times[name]))
    known[key] = _decided[path, key] = best
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only means measuring again next time
    return best


# mallopt(3) parameters of glibc
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_malloc_tuned: bool | None = None


def add_allocator_option(parser: argparse.ArgumentParser) -> None:
    """``--glibc-malloc`` for the benches: measure glibc's default allocator instead of
    :func:`keep_freed_memory` (what the tools run with)."""
    parser.add_argument("--glibc-malloc", action="store_true",
                        help="glibc's default allocator instead of keeping freed memory as the tools do")


def keep_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    glibc serves every block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps
    it on ``free``: each activation of a full-resolution CPU step (56 MB for a 128-channel 384x288 map)
    is then faulted in page by page again, every step. Measured on 2 cores (AMD EPYC Zen 4): the SPM
    CSNet step at 384x288 fp32 on AVX2 2.6 -> 1.6 s, the compiled bf16 image 42.6 -> 32.2 s, with the
    kernel time (page faults) 15 -> 1 s. The same effect as preloading jemalloc or tcmalloc (PyTorch's CPU
    tuning advice) without asking the user to. Blocks come from the heap (no mmap), and up to
    ``trim_threshold`` bytes of free heap stay mapped.

    Called once by the command-line tools, not on import. Returns whether it applied: not on a C library
    other than glibc, and not when the user already tuned the allocator (``GLIBC_TUNABLES``,
    ``MALLOC_*`` variables, ``LD_PRELOAD``) or set ``MSSG_KEEP_FREED_MEMORY=0``.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    user_tuned = ("GLIBC_TUNABLES" in os.environ or os.environ.get("LD_PRELOAD")
                  or any(k.startswith("MALLOC_") for k in os.environ))
    if user_tuned or os.environ.get("MSSG_KEEP_FREED_MEMORY") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success
    _malloc_tuned = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    return _malloc_tuned
