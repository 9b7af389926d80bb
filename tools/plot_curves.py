"""Plot training curves from mmengine's scalar logs (``WORK_DIR/*/vis_data/scalars.json``).

    python tools/plot_curves.py WORK_DIR [WORK_DIR ...] --out docs/curves.png
                                [--keys decode.loss_ce decode.loss_variation decode.relabel_frac decode.cos_gap]
                                [--labels CE MSSG]

One panel per key, one line per work dir (all runs of a resumed work dir are joined; a later run's
entries replace an earlier one's at the same iteration). Keys absent from a run (for example
``decode.relabel_frac`` in the CE variant) are skipped for that run. Written atomically as PNG.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from common.io import InputError, write_bytes

DEFAULT_KEYS = ("loss", "decode.loss_ce", "decode.loss_variation", "aux.loss_ce", "decode.relabel_frac",
                "decode.cos_gap")


def read_scalars(work_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(iteration, value), ...]}`` of the training entries in ``work_dir``, sorted by iteration."""
    files = sorted(Path(work_dir).glob("*/vis_data/scalars.json"))
    if not files:
        raise InputError(work_dir, "no */vis_data/scalars.json (not an mmengine work dir, or nothing logged yet)")
    by_iter: dict[int, dict] = {}
    for path in files:  # timestamped run folders sort oldest first
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if "loss" in entry and "step" in entry:  # training entries; validation lines have no loss
                by_iter[int(entry["step"])] = entry
    curves: dict[str, list[tuple[int, float]]] = {}
    for step in sorted(by_iter):
        for key, value in by_iter[step].items():
            if isinstance(value, int | float):
                curves.setdefault(key, []).append((step, float(value)))
    return curves


def plot(runs: dict[str, dict[str, list[tuple[int, float]]]], keys: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(k in curves for curves in runs.values())]
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    # one colour per run in every panel, also where a run lacks a key
    colors = {label: f"C{i}" for i, label in enumerate(runs)}
    for ax, key in zip(axes.flat, keys, strict=False):
        for label, curves in runs.items():
            if key in curves:
                steps, values = zip(*curves[key], strict=True)
                ax.plot(steps, values, label=label, color=colors[label], linewidth=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work_dirs", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--keys", nargs="+", default=list(DEFAULT_KEYS))
    p.add_argument("--labels", nargs="+", help="one legend label per work dir (default: folder names)")
    args = p.parse_args(argv)
    labels = args.labels or [d.name for d in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        p.error(f"{len(labels)} labels for {len(args.work_dirs)} work dirs")
    try:
        runs = {label: read_scalars(d) for label, d in zip(labels, args.work_dirs, strict=True)}
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not any(k in curves for curves in runs.values() for k in args.keys):
        print(f"error: none of {args.keys} was logged", file=sys.stderr)
        return 2
    png = plot(runs, args.keys)
    write_bytes(args.out, png)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
