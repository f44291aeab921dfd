"""Smoke check of the network lab (not in the default run: bench/ is not a test path).

    .venv/bin/python -m pytest bench/test_netlab_smoke.py -q

Runs `bench/netlab.py` on its smallest call: two Chromium participants, the second behind
the one-slow-viewer link (downlink 800 kbit/s, 25 ms each way), the feature on only, no
baseline, a 10 s window (≈ 1 minute in all). It checks that the lab did what it says — the
shaped viewer's round trip carries the delay line's 50 ms and the unshaped one's does not, the
rate limit held the downlink under its rate, the media went between the lab's addresses, both
viewers decoded each other, the machine's load was recorded — and asserts no quality figure:
benchmarks measure, tests check behaviour. Skips (with the reason) where the lab cannot run:
not root, no namespaces, no tc, no Chromium.
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
@pytest.mark.browser
@pytest.mark.timeout(200)
def test_one_shaped_viewer_call_is_measured() -> None:
    from bench.netlab import preflight

    reason = preflight()
    if reason:
        pytest.skip(reason)
    run = subprocess.run(
        [
            sys.executable,
            "bench/netlab.py",
            "--scenario",
            "one-slow-viewer",
            "--participants",
            "2",
            "--duration",
            "10",
            "--settle",
            "3",
            "--interval",
            "1",
            "--variants",
            "on",
            "--no-baseline",
            "--seed",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=190,
    )
    match = re.search(r"^JSON: (\S+)$", run.stdout, re.MULTILINE)
    assert match, (run.stdout + run.stderr)[-3000:]
    results = json.loads(Path(match.group(1)).read_text())
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    [call] = results["calls"]
    assert call["simulcast"] is True
    assert [p["ip"] for p in call["participants"]] == ["198.18.0.11", "198.18.0.12"]
    assert call["participants"][0]["link"] == "unshaped"

    # Both decoded each other's camera through the window.
    alice, bob = call["viewers"]["Alice"], call["viewers"]["Bob"]
    assert alice["videos"]["Bob"]["fps"] > 0
    assert bob["videos"]["Alice"]["fps"] > 0
    # The delay line: 25 ms each way on Bob's link, nothing on Alice's.
    assert bob["rtt_ms"]["min"] >= 48, bob["rtt_ms"]
    assert alice["rtt_ms"]["max"] < 40, alice["rtt_ms"]
    # The rate limit: what went through Bob's downlink queue stayed under 800 kbit/s.
    down = call["links"]["Bob"]["down"]
    assert 0 < down["tbf_kbps"] <= 800 * 1.05, down
    assert down["wire_frames"] > 0
    # The SFU's view and the machine's load are in the result.
    assert any(c["kind"] == "video" for c in call["sfu"]["consumers"])
    assert call["load"]["processes_pct_of_core"]["sfu node"] > 0
    assert call["load"]["processes_pct_of_core"]["chromium Bob"] > 0
    assert call["load"]["loadavg"]
