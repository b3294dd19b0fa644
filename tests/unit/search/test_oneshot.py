"""One-shot training resumes exactly; fixed batches score every architecture on the same images; the final step."""

import numpy as np
import pytest
import torch

from raynas.data.device_loader import DeviceLoader, TensorImages
from raynas.search.oneshot import OneShotConfig, UniformTraining, most_probable, top_k
from raynas.space.nb201 import Cell
from raynas.supernet.cells import CellSupernet
from raynas.supernet.scoring import FixedBatches


def loader(seed: int = 0) -> DeviceLoader:
    g = torch.Generator().manual_seed(seed)
    images = TensorImages(
        torch.randint(0, 256, (24, 3, 32, 32), generator=g, dtype=torch.uint8), torch.randint(0, 10, (24,), generator=g), torch.arange(24)
    )
    return DeviceLoader(
        images, 8, device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True, drop_last=True, augment="crop-flip"
    )


def training(seed: int = 0) -> UniformTraining:
    torch.manual_seed(seed)
    return UniformTraining(CellSupernet(10, channels=4, cells_per_stage=1), loader(), cfg=OneShotConfig(epochs=3), seed=seed)


def test_uniform_training_resumed_from_its_state_ends_where_an_unbroken_run_ends():
    straight = training()
    while not straight.done:
        straight.step()
    first = training()
    first.step()
    state = first.state_dict()
    resumed = training()
    resumed.load_state_dict(state)
    while not resumed.done:
        resumed.step()
    for a, b in zip(straight.supernet.state_dict().values(), resumed.supernet.state_dict().values()):
        assert torch.equal(a, b)


def test_the_learning_rate_follows_a_cosine_to_zero():
    t = training()
    assert t.lr(0) == pytest.approx(0.1) and t.lr(3) == pytest.approx(0.0) and t.lr(1) == pytest.approx(0.075)


def test_fixed_batches_score_an_architecture_the_same_every_time():
    supernet = CellSupernet(10, channels=4, cells_per_stage=1)
    fixed = FixedBatches.draw(loader(1), loader(2), recalibration=2, validation=2)
    cell = Cell.from_code(4321)
    assert fixed.images == 16
    assert fixed.score(supernet, cell) == fixed.score(supernet, cell)


def test_fixed_batches_refuse_more_batches_than_the_split_holds():
    with pytest.raises(ValueError, match="fewer than"):
        FixedBatches.draw(loader(1), loader(2), recalibration=2, validation=5)


def test_top_k_rescores_only_the_first_k_and_returns_the_best():
    scored = []

    def score(c):
        scored.append(c)
        return {"a": 0.2, "b": 0.7, "c": 0.7, "d": 0.9}[c]

    pick, scores = top_k(["a", "b", "c", "d"], score, 3)
    assert pick == "b" and scores == [0.2, 0.7, 0.7] and scored == ["a", "b", "c"]
    with pytest.raises(ValueError, match="no candidate"):
        top_k([], score, 3)


def test_most_probable_ranks_candidates_by_joint_log_probability():
    log_probs = np.log([[0.7, 0.3], [0.4, 0.6]])
    candidates = [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert most_probable(log_probs, candidates, 4) == [1, 0, 3, 2]
    assert most_probable(log_probs, candidates, 1) == [1]
