"""MSG overhead benchmark: seconds per training step of the CPU-scale config with MSG (Variation +
Omission, Omission active) vs the same config with plain CE on the proposals, in one process.

    python bench/msg_step.py [--config configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py]
                             [--steps 6 --warmup 2 --batch 8 --size 256]

Both models see the same random batch (images and 0/1/2 proposal maps); steps alternate between
the two models so that machine load drifts affect both alike. Target: MSG overhead <= 10%.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import MSG  # noqa: E402,F401

# isort: split
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402


def build(cfg: Config, msg: bool):
    model_cfg = cfg.model.copy()
    if not msg:
        model_cfg.decode_head = dict(model_cfg.decode_head, variation=None, omission=None)
    model = MODELS.build(model_cfg).train()
    model.current_iter = 10**9  # Omission active
    return model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py"))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen) * 255
    proposals = torch.zeros(args.batch, args.size, args.size, dtype=torch.long)
    s = args.size
    proposals[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 2
    proposals[:, s // 4 : s // 4 + s // 16, s // 4 : 3 * s // 4] = 1
    samples = [SegDataSample(gt_sem_seg=PixelData(data=pp[None]), metainfo=dict(img_shape=(s, s), ori_shape=(s, s)))
               for pp in proposals]
    runs = {"plain CE": build(cfg, msg=False), "MSG": build(cfg, msg=True)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for step in range(args.warmup + args.steps):
        for name, (model, opt) in runs.items():
            start = time.perf_counter()
            data = model.data_preprocessor(dict(inputs=list(images.to(torch.uint8)), data_samples=samples), True)
            losses = model.loss(data["inputs"], data["data_samples"])
            opt.zero_grad()
            sum(v for k, v in losses.items() if "loss" in k).backward()
            opt.step()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
    ce, msg = statistics.median(times["plain CE"]), statistics.median(times["MSG"])
    print(f"config {Path(args.config).name}, batch {args.batch}x{args.size}^2, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps")
    print(f"plain CE: {ce:.3f} s/step   MSG (Variation + Omission): {msg:.3f} s/step   "
          f"overhead: {100 * (msg / ce - 1):+.1f}% (target <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
