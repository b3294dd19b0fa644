import numpy as np
import pytest
import torch

from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.architecture import Architecture
from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet

SPACE = get_space("mnist-ofa")
ENCODER = ArchEncoder.for_space(SPACE, (24, 28))


def _archs(n, seed=0):
    net, gen = ElasticSupernet(SPACE, 10, min_depth=2, resolutions=(24, 28)), torch.Generator().manual_seed(seed)
    return [net.sample(gen, kernels=(3, 5, 7), expansions=(3, 4, 6), depths=(2, 3, 4), resolutions=(24, 28)) for _ in range(n)]


def test_encoding_marks_kernel_expansion_and_resolution():
    arch = Architecture("mnist-ofa@r24", ("k5e4", "k3e6", "skip", "skip") + ("k7e3",) * 8)
    vec = ENCODER.encode(arch)
    assert vec.shape == (12 * 6 + 2,) and vec.sum() == 10 * 2 + 1
    assert list(vec[:6]) == [0, 1, 0, 0, 1, 0] and list(vec[12:18]) == [0] * 6 and list(vec[-2:]) == [1, 0]


def test_predictor_learns_a_smooth_function_better_than_the_mean(tmp_path):
    archs = _archs(200)
    x = ENCODER.encode_many(archs).numpy()
    truth = 0.5 + 0.02 * x[:, :-2].sum(1) + 0.05 * x[:, -1]  # more/larger layers and resolution help
    model = AccuracyPredictor(ENCODER)
    report = model.fit(archs, truth.tolist(), seed=0)
    assert report["n_heldout"] == 40 and report["rmse_heldout"] < 0.5 * report["rmse_heldout_mean_baseline"]
    loaded = AccuracyPredictor.load(model.save(tmp_path))
    assert np.allclose(loaded.predict(archs[:5]), model.predict(archs[:5]))


def test_predictor_needs_a_few_points():
    with pytest.raises(ValueError, match="at least 5"):
        AccuracyPredictor(ENCODER).fit(_archs(3), [0.1, 0.2, 0.3], seed=0)
