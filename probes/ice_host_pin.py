"""Pin the host addresses aioice offers as ICE candidates.

aioice reads every interface address and leaves 127.0.0.1 out, so a viewer on
loopback (tests, the demo) gathers no usable candidate, and a multi-homed probe
host offers addresses it should not. This is the one process-wide setting of
the probe: aioice looks the function up on its module at gathering time
(:func:`probes.rtc_seams.set_host_addresses`).
"""

from __future__ import annotations

from probes.rtc_seams import set_host_addresses


def pin_host_addresses(addresses: list[str] | None) -> None:
    """Offer only ``addresses`` from now on; ``None`` restores aioice's own choice."""
    if addresses is None:
        set_host_addresses(None)
        return
    pinned = list(addresses)
    v4 = [a for a in pinned if ":" not in a]
    v6 = [a for a in pinned if ":" in a]

    def pinned_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return (v4 if use_ipv4 else []) + (v6 if use_ipv6 else [])

    set_host_addresses(pinned_host_addresses)
