"""`l1ml synth`: HLS synthesis (and verify and GHDL checks) as scheduled jobs on a local memory-aware queue, Slurm or
HTCondor; their outcomes, and the tools' reports parsed and compared with the hw target's budgets."""
