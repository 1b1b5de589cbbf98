"""Feature encoders, by name: ``get_encoder("hog-color", n_frames=18)``."""

from vida.encoders.registry import Encoder, available, get_encoder, preload_modules, register

__all__ = ["Encoder", "available", "get_encoder", "preload_modules", "register"]
