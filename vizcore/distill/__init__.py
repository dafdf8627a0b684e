"""Distillation: synthetic data from a teacher, students, KegNet, compression and its data-free repair."""
