"""L1 event data: the ADC2021 layout, a reader for it, a Pythia 8 generator with L1 object emulation, and inspection."""
