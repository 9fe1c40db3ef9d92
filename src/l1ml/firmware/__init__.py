"""Firmware: hls4ml projects of networks and conifer projects (HLS C++ and VHDL) of BDTs, of trained runs and of your
own models, behind one project interface (`project`); their batched g++ C-simulation (`csim`) and GHDL simulation."""
