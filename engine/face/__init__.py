"""Face tracking, topology, the canonical face, head pose and expression measures."""
