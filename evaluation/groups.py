"""Scores per group of images: pooled metrics of each grade (GlaS: benign / malignant) of one set.

A pooled score over a whole set hides where a model fails; GlaS ships a table of each image's grade
(``Grade.csv``: ``name``, ``patient ID``, `` grade (GlaS)`` benign/malignant, and the finer
`` grade (Sirinukunwattana et al. 2015)``: healthy, adenomatous, moderately / poorly differentiated).
:func:`read_groups` reads such a table (any CSV whose first column names the images), and
:func:`group_scores` pools the per-image rows of :mod:`evaluation.folders` over each group exactly as
the whole set is pooled, so a group's numbers are the set's numbers restricted to its images.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from common.io import InputError, is_image_file
from evaluation.folders import run_reporting_errors, write_table
from evaluation.glas_objects import ObjectSums
from evaluation.pixel import PooledCounts

# GlaS's table has both a coarse and a fine grade; the coarse one is the split the challenge reports.
DEFAULT_COLUMNS = ("grade (GlaS)",)
UNLISTED = "(not in the table)"
T = TypeVar("T")


def add_group_arguments(parser: argparse.ArgumentParser) -> None:
    """``--groups CSV`` and ``--group-column NAME``, as the evaluation tools take them."""
    parser.add_argument("--groups", metavar="CSV", help="also score each group of images of this table (first "
                        "column the image names), e.g. GlaS's Grade.csv: one line per grade")
    parser.add_argument("--group-column", metavar="NAME",
                        help="the table's group column (default: ' grade (GlaS)' where present, else the second)")


def with_group_column(rows: list[dict], fields: Sequence[str], groups: Mapping[str, str] | None
                      ) -> tuple[list[dict], tuple[str, ...]]:
    """Per-image rows and CSV fields with each image's ``group`` added (unchanged without ``groups``)."""
    if groups is None:
        return rows, tuple(fields)
    return [{**row, "group": groups.get(row["image"], UNLISTED)} for row in rows], (*fields, "group")


def read_groups(path: str | os.PathLike, column: str | None = None) -> dict[str, str]:
    """``{image stem: group}`` from a CSV table whose first column names the images.

    ``column`` picks the group column by its header (surrounding spaces ignored: GlaS's headers have
    them); by default `` grade (GlaS)`` where the table has it, else the second column. Names lose
    any image extension, so ``testA_1`` and ``testA_1.bmp`` match the same prediction. Line endings
    may be ``\\r`` alone (GlaS's ``Grade.csv`` has them).
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            table = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except OSError as err:
        raise InputError(path, f"cannot read the group table ({err.strerror or err})") from err
    except (csv.Error, UnicodeDecodeError) as err:
        raise InputError(path, f"not a CSV table ({err})") from err
    if len(table) < 2 or len(table[0]) < 2:
        raise InputError(path, "a group table needs a header row, a name column and a group column")
    header = [cell.strip() for cell in table[0]]
    if column is None:
        index = next((header.index(c) for c in DEFAULT_COLUMNS if c in header), 1)
    elif column.strip() in header:
        index = header.index(column.strip())
    else:
        raise InputError(path, f"no column {column.strip()!r}; the table has {', '.join(map(repr, header))}")
    groups: dict[str, str] = {}
    for line, row in enumerate(table[1:], start=2):
        if len(row) <= index:
            raise InputError(path, f"line {line} has no {header[index]!r} value")
        name = row[0].strip()
        groups[Path(name).stem if is_image_file(name) else name] = row[index].strip()
    return groups


def group_scores(rows: Iterable[Mapping], groups: Mapping[str, str]) -> dict[str, dict]:
    """Pool the per-image rows of a set over each group, in sorted group order.

    ``rows`` are those of :func:`evaluation.folders.score_pixels` or ``score_objects``: each carries
    its image's ``pixels`` (:class:`PooledCounts`) and, from ``score_objects``, ``objects``
    (:class:`ObjectSums`). Returns ``{group: {"images": n, "pixels": PooledCounts, "objects":
    ObjectSums | None}}``; images missing from ``groups`` form the group ``UNLISTED``.
    """
    out: dict[str, dict] = {}
    for row in rows:
        group = groups.get(row["image"], UNLISTED)
        entry = out.setdefault(group, {"images": 0, "pixels": PooledCounts(), "objects": None})
        entry["images"] += 1
        entry["pixels"] += row["pixels"]
        if row.get("objects") is not None:
            entry["objects"] = entry["objects"] or ObjectSums()
            entry["objects"] += row["objects"]
    return dict(sorted(out.items()))


def pool_by_group(rows: Iterable[Mapping], groups: Mapping[str, str], key: str,
                  empty_like: Callable[[T], T]) -> dict[str, tuple[int, T]]:
    """``{group: (images, pooled counts)}`` of the rows' ``row[key]`` counts (anything with ``+=``), in
    sorted group order; ``empty_like(counts)`` starts a group's pool. Images missing from ``groups`` form
    the group ``UNLISTED``."""
    out: dict[str, tuple[int, T]] = {}
    for row in rows:
        counts = row[key]
        group = groups.get(row["image"], UNLISTED)
        images, pooled = out.get(group) or (0, empty_like(counts))
        pooled += counts
        out[group] = (images + 1, pooled)
    return dict(sorted(out.items()))


def group_line(name: str, entry: Mapping) -> str:
    """One printed line: the group's pooled mIoU, Dice, precision / recall and, if scored, object metrics."""
    pixels: PooledCounts = entry["pixels"]
    d = pixels.details()
    line = (f"group {name}: images: {entry['images']}  mIoU: {pixels.miou():.4f}  Dice: {pixels.dice():.4f}  "
            f"precision: {d['precision']:.4f}  recall: {d['recall']:.4f}  "
            f"pred_fraction: {d['pred_fraction']:.4f}  gt_fraction: {d['gt_fraction']:.4f}")
    objects: ObjectSums | None = entry["objects"]
    if objects is not None:
        line += f"  obj_F1: {objects.f1:.4f}  obj_Dice: {objects.dice:.4f}  obj_Hausdorff: {objects.hausdorff:.2f}"
    return line


def run_group_tables(args: argparse.Namespace, score: Callable, score_args: Sequence,
                     group_counts: Callable[[list[dict], Mapping[str, str]], dict[str, tuple[int, object]]],
                     table_lines: Callable[[str, object], list[str]], fields: Sequence[str],
                     table_fields: Callable[[object], dict] = lambda _: {}) -> int:
    """The body of a tool that prints one pooled table for the set and one per group (``--groups``,
    ``--group-column``, ``--csv``, ``--allow-missing`` in ``args``): ``score(*score_args) -> (pooled,
    rows, pairing)`` as :func:`evaluation.folders.run_reporting_errors` runs it, ``group_counts(rows,
    groups)`` the per-group tables. Returns the exit code (2: nothing scored or a bad group table)."""
    try:
        groups = read_groups(args.groups, args.group_column) if args.groups else None
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    outcome = run_reporting_errors(score, *score_args, allow_missing=args.allow_missing)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    tables = {"all": (len(rows), pooled)}
    if groups is not None:
        tables |= group_counts(rows, groups)
    return rc if report_group_tables(tables, table_lines, args.csv, fields, table_fields) else 2


def report_group_tables(tables: Mapping[str, tuple[int, object]], table_lines: Callable[[str, object], list[str]],
                        csv_path: str | None, fields: Sequence[str],
                        table_fields: Callable[[object], dict] = lambda _: {}) -> bool:
    """Print ``{group: (images, counts)}`` tables (``table_lines(title, counts)``) and, with ``csv_path``,
    write one CSV row per group and row of ``counts.rows()``, headed ``group``, ``images`` and
    ``table_fields(counts)``. False (after one ``error:`` line) when the CSV cannot be written."""
    for name, (images, counts) in tables.items():
        print("\n".join(table_lines(f"{name} ({images} images):", counts)))
    if not csv_path:
        return True
    rows = [{"group": name, "images": images, **table_fields(counts), **row}
            for name, (images, counts) in tables.items() for row in counts.rows()]
    return write_table(csv_path, rows, fields)
