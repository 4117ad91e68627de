"""Speech: audio features, the audio→mouth model, prosody, timeline, speech motion and the talking head."""
