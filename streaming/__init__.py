"""Real-time serving: WebRTC/WebSocket server, frame rings, media tracks (see issue 6)."""
