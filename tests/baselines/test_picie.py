"""PiCIE baseline: K-means, logits/labels, each loss term by hand, the equivariance bookkeeping of the
geometric transform, the set-level oracles, and the command line on tiny synthetic images."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.picie import (
    GeomParams,
    PiCIENet,
    apply_geometric,
    apply_jitter,
    assign,
    cluster_logits,
    cluster_weights,
    kmeans,
    picie_loss,
    random_geometric,
    random_jitter,
)
from evaluation.oracles import set_level_oracle
from tests.tooling import load_tool

picie_cli = load_tool("picie")
oracle_eval = load_tool("oracle_eval")


def _blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    truth = torch.arange(3).repeat_interleave(40)
    return centres[truth] + 0.3 * torch.randn(120, 3, generator=g), truth


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_recovers_separable_clusters_and_is_seeded() -> None:
    x, truth = _blobs()
    for seed in range(4):
        c = kmeans(x, 3, iters=20, seed=seed)
        assert c.shape == (3, 3)
        assert _same_partition(assign(x, c), truth)
    torch.testing.assert_close(kmeans(x, 3, seed=1), kmeans(x, 3, seed=1))
    assert _same_partition(assign(x, kmeans(x, 3, seed=0, max_points=60)), truth)
    with pytest.raises(ValueError):
        kmeans(x[:2], 3)


def test_kmeans_reseeds_empty_clusters() -> None:
    x = torch.tensor([[0.0], [0.0], [0.0], [10.0]])  # two identical initial picks would leave one empty
    c = kmeans(x, 2, iters=10, seed=0)
    assert sorted(c.flatten().tolist()) == [0.0, 10.0]


def test_cluster_logits_agree_with_assign() -> None:
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(2, 4, 3, 5, generator=g), dim=1)
    cents = torch.randn(6, 4, generator=g)
    flat = feats.permute(0, 2, 3, 1).reshape(-1, 4)
    eucl = cluster_logits(feats, cents, "euclidean")
    assert eucl.shape == (2, 6, 3, 5)
    torch.testing.assert_close(eucl.permute(0, 2, 3, 1).reshape(-1, 6), -torch.cdist(flat, cents).pow(2),
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(eucl.argmax(1).flatten(), assign(flat, cents))
    dot = cluster_logits(feats, cents)  # the original's classifier: <f, c>
    torch.testing.assert_close(dot.permute(0, 2, 3, 1).reshape(-1, 6), flat @ cents.T)
    unit = F.normalize(cents, dim=1)  # equal centroid norms: the dot-product argmax is the nearest centroid
    assert torch.equal(cluster_logits(feats, unit).argmax(1).flatten(), assign(flat, unit))
    with pytest.raises(ValueError):
        cluster_logits(feats, cents, "cos")


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


def test_picie_loss_terms_by_hand() -> None:
    # one image, 2 pixels, D = 2, k = 2
    f1 = torch.tensor([[1.0, 0.0], [0.6, 0.8]]).T.reshape(1, 2, 1, 2)
    f2 = torch.tensor([[0.0, 1.0], [0.8, 0.6]]).T.reshape(1, 2, 1, 2)
    c1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    c2 = torch.tensor([[0.5, 0.5], [-1.0, 0.0]])
    y1 = torch.tensor([[[0, 1]]])
    y2 = torch.tensor([[[1, 0]]])
    pix1, pix2 = [[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0], [0.8, 0.6]]

    def term(pix: list[list[float]], cents: list[list[float]], labels: list[int], w: list[float] | None) -> float:
        losses = [_ce([p[0] * c[0] + p[1] * c[1] for c in cents], y) for p, y in zip(pix, labels, strict=True)]
        ws = [1.0 if w is None else w[y] for y in labels]
        return sum(wi * li for wi, li in zip(ws, losses, strict=True)) / sum(ws)

    c1l, c2l = c1.tolist(), c2.tolist()
    for w1, w2 in [(None, None), ([0.25, 0.75], [0.9, 0.1])]:
        out = picie_loss(f1, f2, c1, c2, y1, y2, None if w1 is None else torch.tensor(w1),
                         None if w2 is None else torch.tensor(w2))
        want = {
            "loss11": term(pix1, c1l, [0, 1], w1),
            "loss22": term(pix2, c2l, [1, 0], w2),
            "loss12": term(pix1, c2l, [1, 0], w2),
            "loss21": term(pix2, c1l, [0, 1], w1),
        }
        want["within"] = (want["loss11"] + want["loss22"]) / 2
        want["across"] = (want["loss12"] + want["loss21"]) / 2
        want["total"] = (want["within"] + want["across"]) / 2
        for key, value in want.items():
            assert out[key].item() == pytest.approx(value, rel=1e-5), key


def test_cluster_weights() -> None:
    counts = torch.tensor([1, 3, 0, 4])
    torch.testing.assert_close(cluster_weights(counts, "original"), torch.tensor([0.125, 0.375, 0.0, 0.5]))
    inv = torch.tensor([1.0, 1 / 3, 0.0, 0.25])
    torch.testing.assert_close(cluster_weights(counts, "inverse"), inv / inv.sum())
    assert cluster_weights(counts, "none") is None
    with pytest.raises(ValueError):
        cluster_weights(counts, "sqrt")


@pytest.mark.parametrize("params", [
    GeomParams(0.5, 0.5, 1.0, hflip=True),
    GeomParams(0.75, 0.0, 0.5, vflip=True),
    GeomParams(1.0, 0.3, 0.9, hflip=True, vflip=True),
])
def test_geometric_commutes_with_downsampling(params: GeomParams) -> None:
    """g(image) then the stride-8 "network" == the network then g(feature map) (crops on the 8-px grid)."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 64, 64, generator=g)

    def net(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 8)

    torch.testing.assert_close(net(apply_geometric(image, params, (0, 0))),
                               apply_geometric(net(image), params, (0, 0)))
    # resized back to the input grid (as in training): same size for both views, equal where the crop is
    # the whole image, and the crop's content is what gets resized
    view1 = net(apply_geometric(image, params))
    view2 = apply_geometric(net(image), params)
    assert view1.shape == view2.shape == (2, 3, 8, 8)
    if params.scale == 1.0:
        torch.testing.assert_close(view1, view2)


def test_apply_geometric_crop_and_flip_by_hand() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = apply_geometric(x, GeomParams(0.5, 1.0, 0.0, hflip=True), (0, 0))  # rows 2-3, cols 0-1, flipped
    assert y[0, 0].tolist() == [[9.0, 8.0], [13.0, 12.0]]
    assert apply_geometric(x, GeomParams(0.5, 0.0, 0.0)).shape == (1, 1, 4, 4)


def test_random_transforms_are_seeded_and_in_range() -> None:
    assert random_geometric(3) == random_geometric(3)
    for s in range(20):
        p = random_geometric(s, min_scale=0.5)
        assert 0.5 <= p.scale <= 1 and 0 <= p.u_top <= 1 and not p.vflip
        j = random_jitter(s)
        assert 0.7 <= j.brightness <= 1.3 and -0.1 <= j.hue <= 0.1 and j.blur_sigma <= 2
        out = apply_jitter(torch.rand(1, 3, 16, 16), j)
        assert out.shape == (1, 3, 16, 16) and out.min() >= 0 and out.max() <= 1


def test_picienet_shapes() -> None:
    torch.manual_seed(0)
    net = PiCIENet(dim=8, width_mult=0.0625).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 48)).shape == (2, 8, 8, 6)


def test_set_level_oracles() -> None:
    ids = [np.array([[0, 0, 1, 2]]), np.array([[1, 1, 2, 2]])]
    gts = [np.array([[1, 1, 0, 1]]), np.array([[0, 1, 1, 0]])]
    # over the set: cluster 0 gland 2/2, cluster 1 gland 1/3, cluster 2 gland 2/3
    maj = set_level_oracle(ids, gts, 3, "majority")
    assert maj[0].tolist() == [[True, True, False, True]] and maj[1].tolist() == [[False, False, True, True]]
    # one-to-one: gland to the cluster maximising matched pixels (cluster 0: 2 gland + bg 2 from cluster 1 ...)
    hung = set_level_oracle(ids, gts, 3, "hungarian")
    conf = np.array([[0, 2], [2, 1], [1, 2]])  # (background, gland) pixels per cluster
    best = max(((g, b) for g in range(3) for b in range(3) if g != b), key=lambda p: conf[p[0], 1] + conf[p[1], 0])
    assert hung[0].tolist() == (ids[0] == best[0]).tolist() and hung[1].tolist() == (ids[1] == best[0]).tolist()
    with pytest.raises(ValueError):
        set_level_oracle(ids, gts[:1])


def _write_images(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        im = np.full((64, 64, 3), 220, np.uint8)
        im[16 + i:40, 10:50] = (120, 40, 140)  # a dark purple "gland" on a pale background
        cv2.imwrite(str(folder / f"img{i}.png"), (im + rng.integers(0, 20, im.shape)).astype(np.uint8))


def test_cli_tiny_run_with_a_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "images"
    _write_images(src)
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = picie_cli.main(["--train_image_path", str(src), "--output_root", str(out), "--epochs", "1",
                         "--width_mult", "0.0625", "--dim", "8", "--k", "3", "--scale", "1", "--crop", "64",
                         "--batch", "3", "--min_pixels", "100", "--device", "cpu"])
    assert rc == 1
    err = capsys.readouterr()
    assert [line for line in err.err.splitlines() if line.startswith("error:")] == [
        line for line in err.err.splitlines() if "broken.png" in line and line.startswith("error:")]
    assert "epoch 1/1:" in err.out
    for i in range(3):
        ids = cv2.imread(str(out / "cluster_id" / f"img{i}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / "pseudo_mask" / f"img{i}.png"), cv2.IMREAD_UNCHANGED)
        assert ids.shape == mask.shape == (64, 64)
        assert ids.max() < 3 and set(np.unique(mask)) <= {0, 1}
    rows = {r["image"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert rows["broken"]["status"] == "failed" and all(rows[f"img{i}"]["status"] == "ok" for i in range(3))
    ckpt = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ckpt["centroids"].shape == (3, 8) and "head.weight" in ckpt["state_dict"]

    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    for i in range(3):
        gt = np.zeros((64, 64), np.uint8)
        gt[16 + i:40, 10:50] = 1
        cv2.imwrite(str(gt_dir / f"img{i}_anno.bmp"), gt)
    capsys.readouterr()
    for extra in ([], ["--set-level"], ["--set-level", "--oracle", "hungarian"]):
        assert oracle_eval.main([str(out / "cluster_id"), str(gt_dir), *extra]) == 0
        assert "images: 3" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        oracle_eval.main([str(out / "cluster_id"), str(gt_dir), "--oracle", "hungarian"])


def test_cli_bad_folder_and_too_few_pixels(tmp_path: Path) -> None:
    assert picie_cli.main(["--train_image_path", str(tmp_path / "missing"), "--output_root",
                           str(tmp_path / "out")]) == 2
    src = tmp_path / "one"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((8, 8, 3), np.uint8))  # one 1 x 1 feature map, k = 5
    assert picie_cli.main(["--train_image_path", str(src), "--output_root", str(tmp_path / "out"),
                           "--width_mult", "0.0625", "--dim", "4", "--epochs", "1", "--scale", "1",
                           "--device", "cpu"]) == 1


def test_whole_image_features_have_no_edge_band():
    """A network that answers to its zero padding (here: a 3x3 conv of ones) marks the image edges; on a
    reflect-padded image the features of a uniform image are uniform to the very edge."""
    from baselines.picie import whole_image_features

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.nn.AvgPool2d(8))
    torch.nn.init.ones_(net[0].weight)
    image = torch.full((1, 3, 96, 128), 0.6)
    plain = net((image - 0.5) / 0.2)
    assert not torch.allclose(plain[..., -1, :], plain[..., 5, :])  # the edge band without padding
    feats = whole_image_features(net, image)
    assert feats.shape == (1, 4, 12, 16)
    torch.testing.assert_close(feats, feats[..., 5:6, 5:6].expand_as(feats))


def test_picie_starts_from_a_pretrained_backbone_and_refuses_one_of_another_width(tmp_path: Path, capsys) -> None:
    from baselines.picie import PiCIENet

    torch.manual_seed(3)
    source = PiCIENet(dim=8, width_mult=0.0625).backbone
    path = tmp_path / "backbone.pth"
    torch.save({"state_dict": source.state_dict(), "meta": {}}, path)  # the layout tools/pretrain.py writes
    started = PiCIENet(dim=8, width_mult=0.0625, backbone_checkpoint=str(path)).backbone.state_dict()
    assert all(torch.equal(started[k], v) for k, v in source.state_dict().items())
    assert not torch.equal(PiCIENet(dim=8, width_mult=0.0625).backbone.conv1a.weight, source.conv1a.weight)

    src = tmp_path / "images"
    _write_images(src)
    common = ["--train_image_path", str(src), "--epochs", "1", "--dim", "8", "--k", "3", "--scale", "1",
              "--crop", "64", "--batch", "3", "--min_pixels", "100", "--device", "cpu"]
    rc = picie_cli.main([*common, "--output_root", str(tmp_path / "wide"), "--width_mult", "0.125",
                         "--backbone_checkpoint", str(path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(err) == 1 and str(path) in err[0]
    assert "of --width_mult 0.125: a checkpoint of another width" in err[0]
    assert not (tmp_path / "wide" / "checkpoint.pth").exists()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert picie_cli.main([*common, "--output_root", str(tmp_path / "junk"), "--width_mult", "0.0625",
                           "--backbone_checkpoint", str(tmp_path / "junk.pth")]) == 2
    assert "junk.pth: not a loadable checkpoint" in capsys.readouterr().err
    torch.save({"state_dict": {"head.weight": torch.zeros(2)}}, tmp_path / "head.pth")
    assert picie_cli.main([*common, "--output_root", str(tmp_path / "head"), "--width_mult", "0.0625",
                           "--backbone_checkpoint", str(tmp_path / "head.pth")]) == 2
    assert "head.pth: holds none of the WideRes38 backbone's weights" in capsys.readouterr().err

    out = tmp_path / "out"
    assert picie_cli.main([*common, "--output_root", str(out), "--width_mult", "0.0625",
                           "--backbone_checkpoint", str(path)]) == 0
    ckpt = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ckpt["config"]["backbone_checkpoint"] == str(path)
