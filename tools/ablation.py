"""MSG ablation: CE on the proposals vs +Variation vs +Omission vs both, trained and evaluated alike.

    python tools/ablation.py [--config configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py]
                             [--iters N] [--variants ce variation omission msg]
                             [--images glas/testA/images --masks glas/testA/masks]
                             [--work-root work_dirs/ablation] [--tta | --tta-ratios R ...] [--no-hausdorff]
                             [--proposals work_dirs/spm_glas_testA/cluster_5_nConv_3/gland_proposal]

For each variant (config ``CONFIG`` with the suffix ``_ce`` / ``_variation`` / ``_omission`` / none)
it runs ``tools/train.py`` (``--resume``, so an interrupted ablation continues where it stopped),
``tools/predict.py`` on the evaluation images and ``tools/evaluate.py``'s metrics, then prints one
table (pooled mIoU / Dice, GlaS object F1 / Dice / Hausdorff, seconds per iteration) and writes it
to ``WORK_ROOT/ablation.csv``. ``--iters`` shortens or lengthens every variant's schedule in the
same way: the poly schedule ends at N, MSG for Omission starts at the same fraction of the schedule
as in the config (``--omission-start`` to set it), one checkpoint at the end, no in-training
validation (the evaluation is the prediction step), and the **final** checkpoint is evaluated.
``--tta`` predicts with the config's ``tta_pipeline`` (the evaluation protocol; ``--tta-ratios`` to
choose the ratios), into ``pred_tta`` / ``pred_tta_<ratios>`` beside the 1x ``pred``.
``--proposals`` adds a "proposals" row: SPM's maps of the evaluation images (gland = value > 0),
scored with the same metrics -- the floor that MSG must beat. ``--fill-holes AREA`` also scores every
row's masks after SPM's interior rule (holes smaller than AREA px filled; the ``fill_*`` columns), so
the opt-in post-processing is compared on all rows alike. ``--validate IMAGES MASKS`` also predicts a
declared validation set (e.g. the train images and their masks, never the test set) with the same
protocol and reports its pooled mIoU / Dice / precision / recall (the ``val_*`` columns): the signal
for choosing between recipes without looking at the test set. ``--groups TABLE`` (GlaS's
``Grade.csv``; ``--group-column`` as in ``tools/evaluate.py``) adds each group's pooled mIoU on the
evaluation set (``mIoU_<group>``) and on the validation set (``val_mIoU_<group>``): a recipe that gains
on benign mucosa and loses on adenocarcinoma shows it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common.io import InputError, list_files, read_mask, write_csv, write_png
from common.morphology import remove_small_holes
from evaluation.folders import OBJECT_FIELDS, score_objects, score_pixels
from evaluation.groups import add_group_arguments, group_scores, read_groups
from MSG.datasets.tta import positive_ratio

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {"ce": "_ce", "variation": "_variation", "omission": "_omission", "msg": ""}
METRICS = ("mIoU", "Dice", "obj_F1", "obj_Dice", "obj_Hausdorff")
FIELDS = ("variant", "config", "iters", "s_per_iter", "predict_s", "images", *METRICS)
FILL_FIELDS = ("fill_mIoU", "fill_Dice", "fill_obj_F1")
VAL_FIELDS = ("val_mIoU", "val_Dice", "val_precision", "val_recall")


def variant_config(base_config: Path, variant: str) -> Path:
    """The config of ``variant`` next to ``base_config`` (the full-MSSG config)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return base_config.with_name(base_config.stem + VARIANTS[variant] + base_config.suffix)


def schedule_overrides(config: Path, iters: int | None, omission_start: int | None) -> tuple[int, list[str]]:
    """``(max_iters, --cfg-options list)`` that rescale ``config``'s schedule to ``iters``.

    Omission's start keeps its fraction of the schedule unless ``omission_start`` is given; it is
    only set when the variant has MSG for Omission.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    old_iters = int(cfg.train_cfg.max_iters)
    n = old_iters if iters is None else int(iters)
    if n < 1:
        raise ValueError(f"--iters must be >= 1, got {n}")
    options = [
        f"train_cfg.max_iters={n}",
        # No in-training validation: the evaluation is the prediction step afterwards.
        "val_cfg=None", "val_dataloader=None", "val_evaluator=None",
        f"param_scheduler.0.end={n}",
        f"default_hooks.checkpoint.interval={n}",
    ]
    omission = cfg.model.decode_head.get("omission")
    if omission is not None:
        start = omission_start if omission_start is not None else round(omission.start_iter * n / old_iters)
        options.append(f"model.decode_head.omission.start_iter={start}")
    return n, options


def seconds_per_iter(work_dir: Path) -> float:
    """Mean logged ``time`` (s/iteration) over all runs in ``work_dir`` (resumed runs included)."""
    times = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            entry = json.loads(line)
            if "time" in entry and "loss" in entry:
                times.append(entry["time"])
    return sum(times) / len(times) if times else float("nan")


def prediction_folder(tta: bool, ratios: list[float] | None) -> str:
    """``pred`` (1x), ``pred_tta`` (the config's tta_pipeline) or ``pred_tta_0.75-1-2`` (given ratios)."""
    if ratios:
        return "pred_tta_" + "-".join(f"{r:g}" for r in ratios)
    return "pred_tta" if tta else "pred"


def fill_masks(mask_dir: Path, out_dir: Path, area: int) -> Path:
    """Writes each mask of ``mask_dir`` with holes smaller than ``area`` px filled into ``out_dir``."""
    for path in list_files(mask_dir):
        gland = read_mask(path) > 0
        write_png(out_dir / path.name, remove_small_holes(gland, area).astype(np.uint8) * 255)
    return out_dir


def group_fields(rows: list[dict], groups: dict[str, str] | None, prefix: str = "") -> dict[str, str]:
    """``{prefix}mIoU_<group>`` columns: each group's pooled mIoU over ``rows`` (none without groups)."""
    if groups is None:
        return {}
    return {f"{prefix}mIoU_{name}": f"{entry['pixels'].miou():.4f}"
            for name, entry in group_scores(rows, groups).items()}


def validation_fields(pred_dir: Path, masks: Path, groups: dict[str, str] | None = None) -> dict[str, str]:
    """Pooled mIoU / Dice / precision / recall of ``pred_dir`` against the declared validation masks
    (and each group's mIoU with ``groups``)."""
    counts, rows, pairing = score_pixels(pred_dir, masks)
    if pairing.errors:
        raise InputError(pred_dir, "; ".join(pairing.errors))
    details = counts.details()
    return {"val_mIoU": f"{counts.miou():.4f}", "val_Dice": f"{counts.dice():.4f}",
            "val_precision": f"{details['precision']:.4f}", "val_recall": f"{details['recall']:.4f}",
            **group_fields(rows, groups, "val_")}


def score(pred_dir: Path, masks: Path, hausdorff: bool, csv_path: Path, groups: dict[str, str] | None = None
          ) -> dict:
    """``tools/evaluate.py``'s metrics of a folder of masks/maps; per-image table to ``csv_path``;
    ``summary["groups"]`` holds the ``mIoU_<group>`` columns (empty without ``groups``)."""
    summary, per_image, pairing = score_objects(pred_dir, masks, hausdorff)
    for line in pairing.errors:
        print(f"error: {line}", file=sys.stderr)
    for line in summary["notices"]:
        print(f"note: {line}", file=sys.stderr)
    write_csv(csv_path, per_image, OBJECT_FIELDS)
    return summary | {"groups": group_fields(per_image, groups)}


class StepFailed(RuntimeError):
    """A training/prediction subprocess failed; its own error line has been printed."""

    def __init__(self, cmd: list[str], returncode: int) -> None:
        self.returncode = returncode
        super().__init__(f"{Path(cmd[1]).name} exited with {returncode}")


def run(cmd: list[str]) -> None:
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode:
        raise StepFailed(cmd, proc.returncode)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py")
    p.add_argument("--iters", type=int, help="iterations per variant (default: the config's)")
    p.add_argument("--omission-start", type=int, help="iteration at which Omission starts (default: scaled)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--images", type=Path, default=ROOT / "glas/testA/images")
    p.add_argument("--masks", type=Path, default=ROOT / "glas/testA/masks")
    p.add_argument("--work-root", type=Path, default=ROOT / "work_dirs/ablation")
    p.add_argument("--tta", action="store_true", help="predict with the config's tta_pipeline")
    p.add_argument("--tta-ratios", type=positive_ratio, nargs="+", help="predict with TTA at these scale ratios")
    p.add_argument("--proposals", type=Path, help="SPM gland_proposal folder of the evaluation images: adds a row")
    p.add_argument("--no-hausdorff", dest="hausdorff", action="store_false",
                   help="skip the object Hausdorff (slow on fragmented predictions; reported as nan)")
    p.add_argument("--fill-holes", type=int, metavar="AREA",
                   help="also score each row's masks with holes smaller than AREA px filled")
    p.add_argument("--validate", type=Path, nargs=2, metavar=("IMAGES", "MASKS"),
                   help="also predict and score this declared validation set (never the test set)")
    add_group_arguments(p)
    p.add_argument("--cfg-options", nargs="+", default=[], help="extra overrides for every variant")
    args = p.parse_args(argv)
    try:
        args.group_of = read_groups(args.groups, args.group_column) if args.groups else None
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for folder in (args.images, args.masks, *(args.validate or ())):
        if not folder.is_dir():
            print(f"error: {folder}: folder not found (see glas/README.md)", file=sys.stderr)
            return 2
    # Every config is checked before the first (long) training starts.
    configs = {variant: variant_config(args.config, variant) for variant in args.variants}
    for config in configs.values():
        if not config.is_file():
            print(f"error: {config}: config file not found", file=sys.stderr)
            return 2
    try:
        rows = run_variants(args, configs)
    except (StepFailed, InputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, InputError) or err.returncode == 2 else 1
    fields = table_fields(args)
    print("\n| " + " | ".join(fields) + " |\n|" + "---|" * len(fields))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in fields) + " |")
    print(f"\ntable written to {args.work_root / 'ablation.csv'}")
    return 0


def table_fields(args: argparse.Namespace) -> tuple[str, ...]:
    names = sorted(set(args.group_of.values())) if args.group_of else []
    groups = tuple(f"mIoU_{name}" for name in names)
    val_groups = tuple(f"val_mIoU_{name}" for name in names) if args.validate else ()
    return (FIELDS + groups + (FILL_FIELDS if args.fill_holes else ())
            + (VAL_FIELDS + val_groups if args.validate else ()))


def fill_fields(args: argparse.Namespace, mask_dir: Path, out_dir: Path, csv_path: Path) -> dict[str, str]:
    """The ``fill_*`` columns: ``mask_dir``'s masks scored after the fill (empty without ``--fill-holes``)."""
    if not args.fill_holes:
        return {}
    filled = fill_masks(mask_dir, out_dir, args.fill_holes)
    summary = score(filled, args.masks, args.hausdorff, csv_path)
    return {"fill_mIoU": f"{summary['mIoU']:.4f}", "fill_Dice": f"{summary['Dice']:.4f}",
            "fill_obj_F1": f"{summary['obj_F1']:.4f}"}


def run_variants(args: argparse.Namespace, configs: dict[str, Path]) -> list[dict]:
    """Train (or reuse), predict and evaluate each variant; returns the table rows."""
    rows = []
    fields = table_fields(args)
    if args.proposals:
        summary = score(args.proposals, args.masks, args.hausdorff, args.work_root / "per_image_proposals.csv",
                        args.group_of)
        rows.append({"variant": "proposals", "config": "SPM", "images": summary["images"],
                     **{k: f"{summary[k]:.4f}" for k in METRICS}, **summary["groups"],
                     **fill_fields(args, args.proposals, args.work_root / f"proposals_fill{args.fill_holes}",
                                   args.work_root / "per_image_proposals_fill.csv")})
    for variant, config in configs.items():
        n, options = schedule_overrides(config, args.iters, args.omission_start)
        work_dir = args.work_root / variant
        checkpoint = work_dir / f"iter_{n}.pth"
        start = time.perf_counter()
        if not checkpoint.is_file():
            run([sys.executable, "tools/train.py", str(config), "--work-dir", str(work_dir), "--resume",
                 "--cfg-options", *options, *args.cfg_options])
        pred = work_dir / prediction_folder(args.tta, args.tta_ratios)
        tta_flags = ["--tta"] if args.tta else []
        if args.tta_ratios:
            tta_flags = ["--tta-ratios", *map(str, args.tta_ratios)]
        predict_start = time.perf_counter()
        run([sys.executable, "tools/predict.py", str(config), str(checkpoint), str(args.images), "--out", str(pred),
             *tta_flags])
        predict_s = time.perf_counter() - predict_start
        summary = score(pred / "masks", args.masks, args.hausdorff, work_dir / f"per_image_{pred.name}.csv",
                        args.group_of)
        row = {"variant": variant, "config": config.name, "iters": n,
               "s_per_iter": f"{seconds_per_iter(work_dir):.3f}", "predict_s": f"{predict_s:.0f}",
               "images": summary["images"], **{k: f"{summary[k]:.4f}" for k in METRICS}, **summary["groups"],
               **fill_fields(args, pred / "masks", pred / f"masks_fill{args.fill_holes}",
                             work_dir / f"per_image_{pred.name}_fill.csv")}
        if args.validate:
            val_pred = work_dir / ("val_" + pred.name)
            run([sys.executable, "tools/predict.py", str(config), str(checkpoint), str(args.validate[0]),
                 "--out", str(val_pred), *tta_flags])
            row.update(validation_fields(val_pred / "masks", args.validate[1], args.group_of))
        rows.append(row)
        print(f"[{variant}] done in {time.perf_counter() - start:.0f} s: {rows[-1]}", flush=True)
        write_csv(args.work_root / "ablation.csv", rows, fields)
    return rows


if __name__ == "__main__":
    sys.exit(main())
