"""The real-time server: HTTP/WHIP/WHEP, sessions, engine jobs, tracks, the audio WebSocket, metrics, page."""
