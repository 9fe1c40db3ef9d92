"""`l1ml search`: ask-and-tell searches with Optuna, each trial a job of `l1ml.synth` (see steer.py)."""
