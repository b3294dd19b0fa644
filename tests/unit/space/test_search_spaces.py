"""Both kinds of space answer the ``SearchSpace`` interface alike: the same checks over the NB201 cells
and an MBConv chain, and a black-box search runs on either with no code of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.search.blackbox import SEARCHES, search_class
from raynas.space.chain import ChainSpace
from raynas.space.macro import get_space
from raynas.space.nb201 import NB201
from tests.contract.toy import TOY

SPACES = {"nb201": NB201, "mnist-small": ChainSpace(get_space("mnist-small")), "toy": ChainSpace(TOY)}
INPUTS = {"nb201": (3, 32), "mnist-small": (1, 28), "toy": (1, 16)}


@pytest.mark.parametrize("name", SPACES)
def test_samples_mutations_and_neighbours_differ_by_the_decisions_they_should(name):
    space, rng = SPACES[name], np.random.default_rng(0)
    arch = space.sample(rng)
    space.validate(arch)
    assert space.from_choices(space.choices(arch)) == arch and len(space.choices(arch)) == len(space.options)
    changed = [sum(a != b for a, b in zip(space.choices(arch), space.choices(space.mutate(arch, rng)))) for _ in range(20)]
    assert changed == [1] * 20
    neighbours = space.neighbours(arch)
    assert len(neighbours) == sum(n - 1 for n in space.options) == len(set(neighbours))
    code = space.encode(arch)
    assert code.shape == (sum(space.options),) and code.sum() == len(space.options)


@pytest.mark.parametrize("name", SPACES)
def test_the_space_builds_a_network_of_its_architecture(name):
    space = SPACES[name]
    channels, size = INPUTS[name]
    net = space.build(space.sample(np.random.default_rng(1)), 10).eval()
    assert net(torch.zeros(2, channels, size, size)).shape == (2, 10)


@pytest.mark.parametrize("search", SEARCHES.names())
def test_every_black_box_search_runs_on_a_chain_space(search):
    space = SPACES["toy"]
    cls = search_class(search)
    searcher = cls(space, seed=0)
    score = lambda arch: float(sum(space.choices(arch)))  # noqa: E731  (larger ops score higher)
    for _ in range(12):
        arch = searcher.ask()
        space.validate(arch)
        searcher.tell(arch, None if space.choices(arch)[0] == 0 else score(arch))
    assert len(searcher.history) == 12
