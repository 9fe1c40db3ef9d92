"""Firmware: hls4ml projects of networks (conifer for BDTs is still to come), their batched C-simulation and emulator."""
