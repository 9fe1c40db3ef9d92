"""`l1ml train`: data selection, quantisation-aware training, thresholds from trigger rates, metrics and plots."""
