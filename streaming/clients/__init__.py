"""Clients of the server: a WHIP/WHEP client and the talking-head WebSocket client."""
