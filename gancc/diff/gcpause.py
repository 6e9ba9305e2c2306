"""Moved to gancc.gcpause (one collector pauser for the diff and the rewrite engine); this
name stays for code that still imports it from here."""

from gancc.gcpause import gc_paused

__all__ = ["gc_paused"]
