"""Media in: decoding video and audio, frame folders, optical flow, loudness."""
