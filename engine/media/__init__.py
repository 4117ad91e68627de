"""Media files: video, audio and image decoding and encoding (PyAV)."""
