"""Display helpers shared by the pages."""

import torch

from vizcore.plots.common import stretch_contrast


def test_stretch_contrast_spans_the_grey_range():
    imgs = torch.stack([torch.full((1, 4, 4), 0.1), torch.linspace(0.02, 0.06, 16).view(1, 4, 4)])
    out = stretch_contrast(imgs)
    assert torch.equal(out[0], torch.zeros(1, 4, 4))  # a flat image stays flat
    assert out[1].min() == 0 and torch.isclose(out[1].max(), torch.tensor(1.0))
    assert torch.argsort(out[1].flatten()).equal(torch.argsort(imgs[1].flatten()))  # order of pixels kept
