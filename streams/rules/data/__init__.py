"""Package data for the pure rules (read with importlib.resources, so it ships in the wheel)."""
