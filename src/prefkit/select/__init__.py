"""Subsets under a budget: which pairs to train on (audit, reward-margin sweet spot, vote
agreement, prompt diversity, source balance) and which to send to annotators next (neighbours'
order in doubt, uncertainty, judge disagreement, diversity). See docs/select.md."""
