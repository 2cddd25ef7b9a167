"""Faust stream processors. Rules live in ``streams.rules`` (pure); agents stay thin."""
