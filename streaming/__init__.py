"""Real-time streaming: the server (``server/``), its clients (``clients/``), local devices (``devices/``),
and what they share: frame rings, the wire protocol, the talking-head stream, A/V sync and latency probes."""
