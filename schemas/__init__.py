"""The hub's contract: topic catalogue, Avro schemas, pydantic models, wire codec, errors.

This package imports nothing else of the hub; every other layer imports it.
"""
