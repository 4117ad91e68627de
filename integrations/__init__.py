"""Adapters that put the talking-head generator inside voice-agent frameworks: ``pipecat`` (a frame processor
after the TTS) and ``livekit`` (a LiveKit Agents ``VideoGenerator``, an avatar session and a worker). Each
needs its extra (``pip install 'livepuppet[pipecat]'`` / ``'livepuppet[livekit]'``); importing this package
needs neither."""
