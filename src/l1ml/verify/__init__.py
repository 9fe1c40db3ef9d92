"""`l1ml verify`: the generated firmware's C-simulation checked against the models (see `l1ml.verify.run`)."""
