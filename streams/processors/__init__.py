"""Thin Faust agents: decode, call one rule, emit; every failure goes to a DLQ."""
