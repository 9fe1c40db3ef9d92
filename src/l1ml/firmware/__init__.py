"""Conversion of trained models to HLS projects: hls4ml for networks (conifer for BDTs comes with issue 4)."""
