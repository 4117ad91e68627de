"""Which local addresses WebRTC advertises as ICE host candidates.

aioice gathers every interface address except loopback; a server may want only some (a multi-homed host,
a container) or only 127.0.0.1 (a loopback-only test network, where aioice would otherwise find nothing).
aioice reads one module-level function, so the choice applies to the whole process.
"""

from __future__ import annotations

import aioice.ice


def restrict_host_addresses(addresses: tuple[str, ...]) -> None:
    """Advertise exactly ``addresses`` (no-op when empty: aioice's own choice)."""
    if not addresses:
        return
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
