"""Satgas alert channels: routing, masking, digests, webhook/email/chat senders, the ledger."""
