"""Bit-exact emulation of the firmware's arithmetic, pure numpy: the network emulator (hls4ml io_parallel dense
networks), the BDT emulator and the tree ensemble they and the conversions share. Training, verification and
delivery all use these; none of them needs TensorFlow, hls4ml, conifer or xgboost."""
