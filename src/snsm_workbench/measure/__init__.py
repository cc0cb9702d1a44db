"""Measurements built on the library: memory (estimated and live), speed, model shapes."""
