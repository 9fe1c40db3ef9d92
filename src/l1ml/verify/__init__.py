"""Bit-exact C-simulation checks of generated firmware. Arrives with `l1ml verify` (issue 4)."""
