"""Prompt sets: one prompt is an anecdote, a set is evidence. Files: prompts.py (where a set comes
from, and the checks before anything runs), batches.py (prompts of different lengths in padded
batches through the gateway), direct.py (the logit difference and each head's direct share per
prompt), patching.py (attribution and exact patching per prompt pair), ablation.py (each head
switched off over the set), head_scores.py (previous-token, induction and duplicate scores per
prompt). Every result keeps its per-prompt values: a mean alone hides the spread.
"""
