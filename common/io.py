"""Image reading/conversion and atomic writing, shared by SPM and the tools.

Every reader raises :class:`InputError` whose message is one line naming the file and the
problem; writers go through a temporary file in the target folder and ``os.replace`` so a
crash or a full disk never leaves a half-written output behind.
"""
from __future__ import annotations

import csv
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".bmp", ".png", ".tif", ".tiff", ".jpg", ".jpeg"})
MIN_SIDE = 3


class InputError(ValueError):
    """A bad input file; ``str(err)`` is a one-line message naming the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def list_files(folder: str | os.PathLike) -> list[Path]:
    """Regular, non-hidden files of ``folder`` in sorted order (the original's ``sorted(glob)``), and
    broken symbolic links (dangling or looping), so that a batch reports them instead of skipping them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a directory")
    return sorted(p for p in folder.iterdir() if (p.is_file() or p.is_symlink()) and not p.name.startswith("."))


def collect_files(inputs: Iterable[str | os.PathLike], accept: Callable[[Path], bool]) -> list[Path]:
    """The files named in ``inputs``, folders expanded to their files that ``accept`` takes (sorted); a
    named file is kept as given, so a wrong one is reported rather than skipped."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(f for f in list_files(path) if accept(f))
        else:
            files.append(path)
    return files


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _decode_any(path: Path) -> np.ndarray:
    """Decode with OpenCV (as the original SPM did), falling back to Pillow for what it rejects."""
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is not None:
        # IMREAD_UNCHANGED ignores the EXIF orientation that cv2.imread and mmcv (tools/test.py) apply
        return upright(img, exif_orientation(path))  # BGR, BGRA or gray, 8- or 16-bit
    try:
        with Image.open(path) as pil:
            pil.load()
            if pil.mode == "P":
                pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
            arr = upright(np.asarray(pil), exif_orientation(path))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InputError(path, f"cannot decode image ({err.__class__.__name__})") from None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(arr)


# EXIF orientation tag -> the array operation that shows the image upright (PIL's exif_transpose).
_ORIENTATION_TAG = 0x0112
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation of an image file (1, upright, when absent or unreadable)."""
    try:
        with Image.open(path) as pil:
            return int(pil.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except (UnidentifiedImageError, OSError, ValueError, TypeError):
        return 1


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H, W[, C]) turned as its EXIF ``orientation`` says, as ``cv2.imread`` and mmcv show it."""
    op = _UPRIGHT.get(orientation)
    return array if op is None else np.ascontiguousarray(op(array))


def _is_palette(path: Path) -> bool:
    """True for palette ("P" mode) images; Pillow reads only the header here."""
    try:
        with Image.open(path) as pil:
            return pil.mode in ("P", "PA")
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def read_bgr(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read an image as 8-bit, 3-channel BGR (what ``cv2.imread(path)`` gives for ordinary files),
    upright as its EXIF orientation says (as ``cv2.imread`` and mmcv's loader show it).

    Grayscale, alpha, 16-bit and palette images are converted; each conversion is reported
    in the returned warnings so that a batch can record it.

    Returns:
        ``(image, warnings)`` with ``image`` of shape ``(H, W, 3)``, dtype uint8.

    Raises:
        InputError: missing, unreadable, undecodable, or smaller than 3 x 3.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "broken symbolic link (its target is missing or loops)" if path.is_symlink()
                         else "no such file")
    if not is_image_file(path):
        raise InputError(path, f"not an image file type ({path.suffix or 'no extension'})")
    try:
        img = _decode_any(path)
    except InputError:
        raise
    except OSError as err:
        raise InputError(path, f"cannot read file ({err.strerror or err})") from None
    warnings: list[str] = []
    if _is_palette(path):
        warnings.append("palette image converted to BGR")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        warnings.append("16-bit image scaled to 8-bit")
    elif img.dtype == bool:
        img = img.astype(np.uint8) * 255
        warnings.append("1-bit image converted to 8-bit")
    elif img.dtype != np.uint8:
        raise InputError(path, f"unsupported pixel type {img.dtype}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
        warnings.append("grayscale image converted to 3 channels")
    elif img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
        warnings.append("alpha channel dropped")
    elif not (img.ndim == 3 and img.shape[2] == 3):
        raise InputError(path, f"unsupported image shape {img.shape}")
    h, w = img.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(path, f"image is {w}x{h}, smaller than {MIN_SIDE}x{MIN_SIDE}")
    return img, warnings


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a label/mask image as a 2-D integer array.

    A multi-channel file is accepted only when its colour channels are equal (a gray mask saved as
    RGB); a colour image (an overlay, a photo) raises :class:`InputError`.
    """
    path = Path(path)
    try:
        with Image.open(path) as pil:
            arr = upright(np.asarray(pil), int(pil.getexif().get(_ORIENTATION_TAG, 1) or 1))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InputError(path, f"cannot decode mask ({err.__class__.__name__})") from None
    if arr.ndim == 3:
        colour = arr[:, :, :3]
        if colour.shape[2] > 1 and not (colour == colour[:, :, :1]).all():
            raise InputError(path, f"colour image ({arr.shape[2]} channels), expected a single-channel mask")
        arr = arr[:, :, 0]
    return np.asarray(arr)


def read_mask_for(mask_path: str | os.PathLike, image_shape: tuple[int, ...], missing: str) -> np.ndarray:
    """Read the mask/map belonging to an image of ``image_shape`` (H, W, ...) and check its size.

    Raises:
        InputError: ``missing`` when the file does not exist; a size mismatch names both sizes.
    """
    mask_path = Path(mask_path)
    if not mask_path.is_file():
        raise InputError(mask_path, missing)
    mask = read_mask(mask_path)
    if mask.shape != tuple(image_shape[:2]):
        raise InputError(mask_path, f"size {mask.shape[1]}x{mask.shape[0]} differs from its image "
                                    f"{image_shape[1]}x{image_shape[0]}")
    return mask


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs get the usual 0666 & ~umask like any open() would give.
_FILE_MODE = 0o666 & ~_current_umask()


# Temporary files are ``.NAME.<host>-<pid>.<random>.tmp`` so that a later run can tell whether their
# writer is still alive (another rank of tools/dist_spm.sh writing into the same folder) before removing
# them; files written from another host are never touched.
_TMP_SUFFIX = ".tmp"
_WRITER = f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


def _atomic_write(path: Path, write: Callable[[IO], None], mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_WRITER}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as fh:
            write(fh)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files of interrupted writes in ``folder`` whose writing process has
    exited (a killed run); files of live processes are left alone. Returns how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    host = _WRITER.rsplit("-", 1)[0]
    for tmp in folder.glob(f".*{_TMP_SUFFIX}"):
        parts = tmp.name.split(".")  # ['', NAME..., 'host-pid', random, 'tmp']
        writer_host, _, pid = parts[-3].rpartition("-") if len(parts) >= 5 else ("", "", "")
        if writer_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def probability_to_uint8(probability: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> the 8-bit maps the prediction tools write (``p = value / 255``)."""
    return np.round(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


def read_probability(path: str | os.PathLike, image_shape: tuple[int, ...] | None = None,
                     missing: str = "no such file") -> np.ndarray:
    """An 8-bit probability map (:func:`probability_to_uint8`) as ``(H, W)`` float32 in [0, 1].

    With ``image_shape`` its size is checked as :func:`read_mask_for` does. Other bit depths are refused:
    a 16-bit or 0/1 map read as ``v / 255`` would be silently wrong.
    """
    raw = read_mask(path) if image_shape is None else read_mask_for(path, image_shape, missing)
    if raw.dtype != np.uint8:
        raise InputError(path, f"{raw.dtype} values, expected an 8-bit probability map (0-255 for 0-1)")
    return raw.astype(np.float32) / 255.0


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8/uint16 gray or uint8 BGR array as PNG, atomically."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    _atomic_write(path, lambda fh: fh.write(buf.tobytes()), "wb")


def write_atomically(path: str | os.PathLike, write: Callable[[IO], None], mode: str = "wb") -> None:
    """``write(fh)`` into a temp file beside ``path``, then rename it to ``path`` (nothing half-written)."""
    _atomic_write(Path(path), write, mode)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that opens files itself (tifffile); renamed to ``path``
    when the block ends without error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_WRITER}.", suffix=_TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` (an encoded PNG, a figure) to ``path``, atomically."""
    _atomic_write(Path(path), lambda fh: fh.write(data), "wb")


def write_csv(path: str | os.PathLike, rows: Iterable[dict], fieldnames: Sequence[str]) -> None:
    """Write dict rows as CSV, atomically."""

    def write(fh: IO) -> None:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    _atomic_write(Path(path), write, "w")


def read_csv(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check_writable(folder: str | os.PathLike) -> None:
    """Create ``folder`` and prove a file can be written there, or raise InputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write_test.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise InputError(folder, f"output folder not writable ({err.strerror or err})") from None


def check_outside_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise InputError if the output folder ``out`` is one of the input folders or inside one (its
    files would be read back as inputs, or overwrite them)."""
    resolved = Path(out).resolve()
    for folder in inputs:
        src = Path(folder).resolve()
        if resolved == src or src in resolved.parents:
            raise InputError(out, f"is (inside) the input folder {folder}; choose a separate output folder")


def check_unique_stems(files: Iterable[str | os.PathLike]) -> None:
    """Outputs are named after the input's stem: two inputs with one stem (``a.png``, ``a.jpg``) would
    overwrite each other's outputs, so they are refused before any work starts."""
    seen: dict[str, Path] = {}
    for f in map(Path, files):
        if f.stem in seen:
            raise InputError(f, f"same name as {seen[f.stem]}: outputs are named after the stem "
                                f"{f.stem!r} and would overwrite each other; rename one")
        seen[f.stem] = f


def prepare_batch(image_folder: str | os.PathLike, out_dirs: Iterable[str | os.PathLike]) -> list[Path]:
    """The files of a per-image batch job (SPM, SGSCN), checked before any work starts: the folder has
    files, no two images share a stem, every output folder is writable; temp files that dead writers
    left there are removed. Raises InputError."""
    files = list_files(image_folder)
    if not files:
        raise InputError(image_folder, "no files found")
    check_unique_stems(f for f in files if is_image_file(f))
    for folder in out_dirs:
        check_writable(folder)
        remove_stale_temp_files(folder)
    return files


def error_line(path: str | os.PathLike, err: Exception) -> str:
    """One line for a batch job's log: an InputError already names its file; others get it prepended."""
    msg = str(err) if isinstance(err, InputError) else f"{path}: {err.__class__.__name__}: {err}"
    return msg.splitlines()[0] if msg else str(path)


def merge_summary(
    summary: str | os.PathLike, rows: list[dict], fieldnames: Sequence[str], parts: Iterable[Path] = ()
) -> None:
    """Write ``summary`` as its earlier rows, then ``parts``' rows, then ``rows``, one row per image (a
    later row replaces an earlier one of the same image: a resumed run keeps what it did not redo)."""
    merged: dict[str, dict] = {}
    for src in [Path(summary), *parts]:
        if src.exists():
            merged.update({r["image"]: r for r in read_csv(src)})
    merged.update({r["image"]: r for r in rows})
    write_csv(summary, [merged[k] for k in sorted(merged)], fieldnames)


def find_ground_truth(gt_dir: str | os.PathLike, stem: str) -> Path:
    """The mask of image ``stem`` in ``gt_dir``: ``stem.<ext>`` or the official GlaS ``stem_anno.<ext>``."""
    gt_dir = Path(gt_dir)
    for name in (stem, f"{stem}_anno"):
        for ext in sorted(IMAGE_EXTENSIONS):
            candidate = gt_dir / f"{name}{ext}"
            if candidate.is_file():
                return candidate
    raise InputError(gt_dir / stem, "no ground-truth mask (looked for NAME.<ext> and NAME_anno.<ext>)")
