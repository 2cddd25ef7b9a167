"""The SIASN adapter: blocking orders to SIASN over HTTP, exactly once in effect.

``client`` talks to SIASN (port + HTTP implementation), ``adapter`` turns an order into its
outcome, ``runner`` is the Kafka loop that records outcomes and offsets in one transaction.
"""
