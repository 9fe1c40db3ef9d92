"""HLS synthesis as scheduled jobs (local queue, Slurm, HTCondor) and report parsing. Arrives with `l1ml synth` (issue 5)."""
