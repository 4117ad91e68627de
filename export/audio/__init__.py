"""Training and export of the audio→mouth model (torch is needed here only, never by the runtime)."""
