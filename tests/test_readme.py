"""The README's MSG quick start, run exactly as written (in a scratch folder that links the repository's
code), end to end on the synthetic sample: SPM -> crop -> train -> test -> predict -> evaluate."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- msg-quickstart -->"


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_block_is_the_pipeline():
    verbs = [shlex.split(c)[1] for c in quickstart_commands()]
    assert verbs == ["tools/make_synthetic_glas.py", "SPM/SPM.py", "tools/crop_img_and_gt.py", "tools/train.py",
                     "tools/test.py", "tools/predict.py", "tools/evaluate.py"]


def test_readme_msg_quickstart_runs_as_written(tmp_path):
    for name in ("SPM", "MSG", "tools", "configs", "evaluation"):
        (tmp_path / name).symlink_to(ROOT / name)
    outputs = []
    for command in quickstart_commands():
        argv = shlex.split(command)
        assert argv[0] == "python"
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        outputs.append((proc.stdout, proc.stderr))
    assert (tmp_path / "work_dirs" / "mssg_synthetic" / "iter_20.pth").is_file()
    assert "mDice" in "".join(outputs[4])  # tools/test.py: mmseg's class-mean metrics
    summary = outputs[6][0].strip().splitlines()[-1]
    assert summary.startswith("images: 3  mIoU: ") and " Dice: " in summary and "obj_Hausdorff: " in summary
    assert "touching glands merge" in outputs[6][1]  # the synthetic masks are binary
