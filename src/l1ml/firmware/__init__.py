"""Conversion to HLS/VHDL projects with hls4ml and conifer. Arrives with `l1ml convert` (issue 4)."""
