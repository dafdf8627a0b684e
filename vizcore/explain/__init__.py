"""Interpretability methods: class and filter visualizations, prediction gradients, perturbations, knockouts."""
