"""`vad demo --quick`: the whole pipeline on data it makes itself, announced random backbone, metrics printed."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_quick_completes_and_prints_metrics(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "apps.cli", "-q", "demo", "--quick", "--out", str(out),
                           "--device", "cpu"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert "RANDOM-initialised backbone" in text and "--pretrained" in text  # announced, not silent
    assert "frame AUC" in text and "AP" in text
    assert "chance 50.0 %" in text and "training-free reference" in text and "leak AUC" in text
    plots = sorted((out / "scores").glob("*.png"))
    classes = {p.stem.split("_")[0] for p in plots}
    assert len(plots) >= 2 and "Normal" in classes and len(classes) == len(plots)  # one scored video per class
    assert all(p.stat().st_size > 10_000 for p in plots)
    assert all(p.with_suffix("").with_suffix(".scores.csv").exists() for p in plots)
    assert (out / "model" / "config.json").exists() and (out / "model" / "eval-test.json").exists()
    assert "Traceback" not in proc.stderr
