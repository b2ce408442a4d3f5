"""The quickstart: the pipeline on the simulated default, in one command, with a report."""
