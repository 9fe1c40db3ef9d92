"""Checks that generated firmware agrees with the models: bit-exact comparisons and adversarial inputs.

`l1ml verify` itself arrives with issue 4; the comparison and the adversarial inputs are used by firmware_tests/ today.
"""
