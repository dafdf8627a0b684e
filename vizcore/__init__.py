"""vizcore: look inside trained image classifiers and learn from what they imagine.

A pure PyTorch library; the Streamlit app (``app.py``, ``pages/``) and the CLI (``python -m vizcore``)
are thin layers over it. The names below are the public API; they are imported on first use, so
``import vizcore`` stays fast. Long operations take ``progress(fraction, message)`` and ``cancelled()``
as keyword arguments and leave a shared model exactly as they found it (``tests/test_hook_safety.py``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # core: progress and cancellation, hooks, jobs, which layers
    "Progress": "vizcore.core.progress", "Cancelled": "vizcore.core.progress",
    "guarded": "vizcore.core.hooks", "frozen_copy": "vizcore.core.hooks", "capture": "vizcore.core.hooks",
    "channel_mask": "vizcore.core.hooks", "hook_count": "vizcore.core.hooks",
    "start_job": "vizcore.core.jobs", "job_call": "vizcore.core.jobs",
    "model_device": "vizcore.core.layers", "conv_layers": "vizcore.core.layers", "dense_layers": "vizcore.core.layers",
    "knockable_layers": "vizcore.core.layers", "num_classes": "vizcore.core.layers",
    # data, models, zoo, metrics, training
    "Dataset": "vizcore.data", "load_dataset": "vizcore.data", "available_datasets": "vizcore.data",
    "build_model": "vizcore.models", "ARCHITECTURES": "vizcore.models",
    "load_model": "vizcore.zoo", "list_models": "vizcore.zoo", "get_entry": "vizcore.zoo", "save_model": "vizcore.zoo",
    "predict_logits": "vizcore.metrics", "evaluate_model": "vizcore.metrics",
    "classification_report": "vizcore.metrics",
    "TrainConfig": "vizcore.train", "fit": "vizcore.train", "train_teacher": "vizcore.train",
    # explain: prediction gradients, perturbations, knockouts, importance, visualizations
    "prediction_gradients": "vizcore.explain.gradients", "input_gradient": "vizcore.explain.gradients",
    "class_average_pg": "vizcore.explain.gradients", "class_filter_scores": "vizcore.explain.gradients",
    "rank_filters": "vizcore.explain.gradients", "characteristic_feature": "vizcore.explain.gradients",
    "looks_like": "vizcore.explain.gradients", "network_flow": "vizcore.explain.network",
    "PerturbConfig": "vizcore.explain.perturb", "perturb": "vizcore.explain.perturb",
    "perturbation_sweep": "vizcore.explain.perturb",
    "KnockoutEvaluator": "vizcore.explain.knockout", "masked_logits": "vizcore.explain.knockout",
    "knockout_curve": "vizcore.explain.knockout",
    "StudyConfig": "vizcore.explain.importance", "compare_rankings": "vizcore.explain.importance",
    "VisualizeConfig": "vizcore.explain.visualize", "class_visualizations": "vizcore.explain.visualize",
    "filter_visualization": "vizcore.explain.visualize", "weight_images": "vizcore.explain.visualize",
    "render": "vizcore.explain.render", "objectives": "vizcore.explain",
    # distill: synthetic sets, students, the data-free protocol, Tucker compression
    "SynthesisConfig": "vizcore.distill.synthesis", "synthesize": "vizcore.distill.synthesis",
    "StudentConfig": "vizcore.distill.students", "train_student": "vizcore.distill.students",
    "DistillConfig": "vizcore.distill.protocol", "run_distillation": "vizcore.distill.protocol",
    "compress_model": "vizcore.distill.compression",
}
_RENAMED = {"available_datasets": "available"}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'vizcore' has no attribute '{name}'")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
