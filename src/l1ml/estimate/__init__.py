"""Firmware cost without Vivado: exact operation counts, RTL through Yosys, BDT VHDL through GHDL and Yosys."""
