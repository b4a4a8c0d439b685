"""DistributedDataParallel training under torchrun (2 CPU processes, gloo) matches one process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.vad.engine.ddp_helpers import run, write_feature_dir

ROOT = Path(__file__).resolve().parents[3]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Two ranks of ``python -m ARGS``; a hang fails the test at ``timeout`` instead of blocking it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*TORCHRUN, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path: Path) -> None:
    """Same seed, same global batch, dropout off: 2 ranks end where 1 process does; rank 0 alone saves."""
    torchrun("tests.vad.engine.ddp_helpers", str(tmp_path / "ddp"))
    single = run(tmp_path / "single")
    ddp = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in range(2)]
    assert sorted(p.name for p in (tmp_path / "ddp").glob("saved_by_rank*")) == ["saved_by_rank0"]
    assert (tmp_path / "ddp" / "model" / "config.json").is_file()
    assert ddp[0] == ddp[1] | {"history": ddp[0]["history"]}  # ranks agree on the selection
    assert [h["frame_auc"] for h in ddp[0]["history"]] == [h["frame_auc"] for h in ddp[1]["history"]]
    assert abs(ddp[0]["best_val"] - single["best_val"]) < 0.05 and ddp[0]["best_val"] > 0.85
    one = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)
    diffs = [max((w[k].float() - one[k].float()).abs().max().item() for k in one)
             for w in (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(2))]
    print(f"DDP vs one process: |dAUC| {abs(ddp[0]['best_val'] - single['best_val']):.2e}, "
          f"parameter max-abs-diff {diffs}")
    assert max(diffs) < 1e-4


@pytest.mark.slow
def test_cli_train_under_torchrun(tmp_path: Path) -> None:
    """``torchrun -m apps.cli train`` writes one checkpoint and reports once."""
    write_feature_dir(tmp_path)
    done = torchrun("apps.cli", "-q", "train", "--features", str(tmp_path / "features"), "--labels",
                    str(tmp_path / "labels.csv"), "--out", str(tmp_path / "model"), "--epochs", "3",
                    "--train.batch-size", "8", "--num-snippets", "16", "--device", "cpu")
    assert done.stdout.count("train: best epoch") == 1, done.stdout
    assert (tmp_path / "model" / "config.json").is_file()
    shutil.rmtree(tmp_path / "model")
