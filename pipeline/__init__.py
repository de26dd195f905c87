"""Floodgate's processing: the pure threshold engine, the streaming app and the CLI."""
