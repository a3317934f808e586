"""Embedded Toxiproxy-compatible fault server: Toxiproxy 2.x HTTP API over an asyncio TCP proxy."""
