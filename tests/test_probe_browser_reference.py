"""The probe and a reference Chromium viewer watch a libwebrtc sender from
their own namespaces under the same random loss (tests/reference_viewer.py).
Asserted here is what must hold whatever the receive strategy: path loss
against the firewall's own count, and, on a clean path, the frame rate
against the browser's and the bitrate against what the sender sent to the
probe. bench/browser_reference.py prints every comparison, including those
that depend on how the probe asks for repairs (frozen time under loss)."""

from __future__ import annotations

import pytest

from tests.chromium import chromium_path
from tests.reference_viewer import compare
from tests.viewer_netns import skip_unless_netns_possible

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.mark.timeout(240)
async def test_probe_against_firewall_and_reference_browser() -> None:
    skip_unless_netns_possible()
    if chromium_path() is None:
        pytest.skip("needs Debian's chromium")
    result = await compare("h264", 10.0, [("clean", 0, None), ("loss5", 5, None),
                                          ("loss15", 15, None)])
    phases = result["phases"]
    assert result["codec"] == "video/H264"
    for name in ("loss5", "loss15"):
        f = phases[name]
        assert f["samples"] >= 12, f
        assert f["truth_loss_pct_probe_path"] > 1.0, f  # the drop did happen
        assert abs(f["probe_loss_error_pp"]) <= 1.0, f
        # The browser counts repaired packets as received: never more than
        # the path lost.
        assert f["browser_loss_pct"] <= f["truth_loss_pct_browser_path"] + 0.5, f
    clean = phases["clean"]
    assert clean["probe_loss_pct"] == 0.0 and clean["truth_loss_pct_probe_path"] == 0.0
    assert clean["browser_fps"] > 5, clean
    assert abs(clean["probe_fps"] - clean["browser_fps"]) <= 0.1 * clean["browser_fps"], clean
    # Nothing retransmitted on a clean path: media payload = what was sent.
    sent = clean["sender_kbps_to_probe"]
    assert abs(clean["probe_bitrate_kbps"] - sent) <= 0.1 * sent, clean
