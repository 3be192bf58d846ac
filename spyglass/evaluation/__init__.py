"""Measuring Spyglass: harnesses that build engines over judged data (above the engine, never below it)."""
