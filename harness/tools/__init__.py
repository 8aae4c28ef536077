"""Side tools around the study: ablations, benchmarks, the bandit simulator, cost plans."""
