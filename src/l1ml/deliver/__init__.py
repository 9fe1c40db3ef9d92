"""Gated delivery of verified firmware and emulator packages. Arrives with `l1ml deliver` (issue 6)."""
