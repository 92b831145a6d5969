"""The lesson's steps, registered by pages/lesson.py: the words (text), progress and verdicts
(progress), and each group of steps' live figures and task checks (input_side, attention, output_side)."""
