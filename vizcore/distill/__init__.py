"""Data-free distillation: synthetic sets made from a teacher alone, students trained on them, the protocol."""
