"""The cycle collector and a long-running process: imports, models and prepared portraits are hundreds of
thousands of objects that live as long as the process, yet every full collection scans them again (0.27 s a
pass for the server's 300k start-up objects on a 2-core VM), and the interpreter lock is held meanwhile:
every stream of the process freezes for that long."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Once a process has loaded what it keeps for life (call it from the process's entry point, never from a
    library: it is process-wide): collect start-up's garbage, then move every surviving object into the
    collector's permanent generation, so later collections scan only what sessions allocate. Objects frozen
    are still freed by reference counting; only cycles among them are never collected. Returns how many
    objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
