"""Trigger metrics (rates, thresholds, efficiencies, AUC) and the plots that show them."""
