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
    for line in ("demo: plot", "demo: scores"):
        path = Path(next(ln for ln in text.splitlines() if ln.startswith(line)).split()[-1])
        assert path.exists() and path.stat().st_size > 0
    assert (out / "model" / "config.json").exists() and (out / "model" / "eval-test.json").exists()
    assert "Traceback" not in proc.stderr
