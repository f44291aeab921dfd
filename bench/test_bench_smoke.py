"""Smoke check of the SFU benchmark (not part of the default test run: bench/ is not in testpaths).

    .venv/bin/python -m pytest bench/test_bench_smoke.py -q

Runs `bench/sfu.py --quick` against a real SFU node (SFU only, 2 s windows) and checks that the
harness measured something real: every subscriber got the full frame rate, the decoding
subscriber decoded 640x480 pictures, latency samples were matched on both paths, CPU was read.
It asserts no performance figure: benchmarks measure, tests check behaviour.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_sfu_benchmark_measures_forwarded_media() -> None:
    run = subprocess.run(
        [sys.executable, "bench/sfu.py", "--quick", "--engines", "sfu", "--window", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    match = re.search(r"^JSON: (\S+)$", run.stdout, re.MULTILINE)
    assert match, run.stdout[-2000:]
    results = json.loads(Path(match.group(1)).read_text())

    for kind in ("video", "audio"):
        rows = [r for r in results["ramps"][f"sfu-{kind}"]["rows"] if not r.get("discarded")]
        assert [r["k"] for r in rows] == [1, 10], results["ramps"][f"sfu-{kind}"]
        for row in rows:
            assert row["full_rate"], row
            assert row["server_cpu_pct"] > 0
            assert row["latency_samples"] > 0
            assert row["added_p50_ms"] is not None
            assert row["direct_p50_ms"] is not None
            assert len(row["clients_cpu_pct_per_process"]) == 2
        if kind == "video":
            decoded = rows[-1]["decoded"]
            assert decoded["video_frames"] > 0
            assert set(decoded["sizes"]) == {"640x480"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_signaling_fuzz_keeps_the_protocol_and_the_server_healthy() -> None:
    """`bench/fuzz_signaling.py --quick`: 1,000 hostile frames over real sockets to daphne.

    The script's own checks decide (exit status): one response per request, id-null errors for
    frames without a usable id, only 4413/4429 closes, /healthz 200, a join afterwards, no
    traceback or ERROR in daphne's log. A fixed seed keeps the frames the same run to run.
    """
    run = subprocess.run(
        [sys.executable, "bench/fuzz_signaling.py", "--quick", "--seed", "20261203"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    match = re.search(r"^JSON: (\S+)$", run.stdout, re.MULTILINE)
    assert match, (run.stdout + run.stderr)[-3000:]
    results = json.loads(Path(match.group(1)).read_text())
    assert results["frames"]["total"] >= 1000
    assert results["missing"] == results["unmatched"] == results["duplicates"] == 0
    assert results["oversize"]["text"]["close_code"] == 4413
    assert results["flood_default_limits"]["close_code"] == 4429
    assert run.returncode == 0, "\n".join(results["failures"])[-3000:]
