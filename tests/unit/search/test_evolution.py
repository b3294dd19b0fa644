import numpy as np
import pytest

from raynas.hardware.lut import LatencyTable
from raynas.search.evolution import EvolutionarySearch, EvolutionConfig, SubnetGenes, SubnetLatency
from raynas.search.predictor import AccuracyPredictor, ArchEncoder
from raynas.space.macro import get_space
from raynas.space.ops import SKIP, parse_mbconv

SPACE = get_space("mnist-ofa")


def _table(space: str, per_unit: float) -> LatencyTable:
    """A synthetic table: an op costs kernel * expansion * per_unit ms (the resolution sets per_unit)."""
    macro = get_space(space)
    entries = {(s.key, op): per_unit * np.prod(parse_mbconv(op)) for s in macro.layers() for op in s.choices if op != SKIP}
    return LatencyTable("t", space, macro.space_hash(), 1, entries, {"stem": 0.1})


class SizePredictor(AccuracyPredictor):
    """Predicted accuracy grows with every active layer's kernel and expansion and with resolution."""

    def predict(self, archs):
        return self.encoder.encode_many(archs).numpy() @ self.weights


def _search(budget, seed=0):
    genes = SubnetGenes(SPACE, 2, (24, 28))
    latency = SubnetLatency({"mnist-ofa": _table("mnist-ofa", 0.01), "mnist-ofa@r24": _table("mnist-ofa@r24", 0.007)})
    predictor = SizePredictor(ArchEncoder.for_space(SPACE, (24, 28)))
    predictor.weights = np.tile([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], 12).tolist() + [0.0, 0.5]
    cfg = EvolutionConfig(population=32, generations=10)
    return EvolutionarySearch(genes, latency, predictor, budget_ms=budget, cfg=cfg, seed=seed), latency


def test_evolution_respects_the_budget_and_improves_on_random_feasible_subnets():
    search, latency = _search(budget=2.0)
    evaluated = []
    result = search.run(lambda archs: evaluated.extend(archs) or [float(search.predictor.predict([a])[0]) for a in archs])
    assert result["predicted_ms"] <= 2.0 and result["predicted_ms"] > 1.6
    assert len(evaluated) == 4 and all(latency(a) <= 2.0 for a in evaluated)
    rng = np.random.default_rng(1)
    randoms = [search.feasible(lambda: search.genes.random(rng))[1] for _ in range(64)]
    assert result["predicted_acc"] > max(search.predictor.predict(randoms))


def test_genes_make_valid_ofa_subnets_and_mutation_keeps_most_genes():
    genes, rng = SubnetGenes(SPACE, 2, (24, 28)), np.random.default_rng(0)
    parent = genes.random(rng)
    child = genes.mutate(parent, 0.1, rng)
    same = sum(a == b for key in "ked" for a, b in zip(parent[key], child[key]))
    assert same >= 0.6 * (12 + 12 + 3)
    arch = genes.architecture(child)
    for stage, depth in zip(SPACE.stage_layers(), child["d"]):
        assert [arch.ops[i] == SKIP for i in stage] == [n >= depth for n in range(len(stage))]


def test_an_impossible_budget_names_itself_and_the_fastest_subnet():
    search, _ = _search(budget=0.05)
    with pytest.raises(ValueError, match="0.050 ms: even the fastest takes"):
        search.run(lambda archs: [0.0] * len(archs))


def test_a_budget_just_above_the_fastest_subnet_is_still_met():
    search, latency = _search(budget=100.0)
    genes = search.genes
    low = latency(genes.architecture(genes.extreme(largest=False)))
    search.budget_ms = low * 1.02
    search.cfg = EvolutionConfig(population=8, generations=2, recheck_top=2)  # every draw falls back to shrinking: keep them few
    result = search.run(lambda archs: [0.5] * len(archs))
    assert low <= result["predicted_ms"] <= low * 1.02


def test_extreme_subnets_bound_every_random_subnet():
    search, latency = _search(budget=100.0)
    genes, rng = search.genes, np.random.default_rng(2)
    low, high = (latency(genes.architecture(genes.extreme(largest))) for largest in (False, True))
    assert all(low <= latency(genes.architecture(genes.random(rng))) <= high for _ in range(200))


def test_subnet_latency_extremes_bound_every_subnet_and_are_reached():
    genes = SubnetGenes(SPACE, 2, (24, 28))
    latency = SubnetLatency({"mnist-ofa": _table("mnist-ofa", 0.01), "mnist-ofa@r24": _table("mnist-ofa@r24", 0.007)})
    low, high = latency.extremes(genes)
    rng = np.random.default_rng(0)
    drawn = [latency(genes.architecture(genes.random(rng))) for _ in range(2000)]
    assert low <= min(drawn) and max(drawn) <= high
    assert latency(genes.architecture(genes.extreme(False))) == pytest.approx(low)
    assert latency(genes.architecture(genes.extreme(True))) == pytest.approx(high)
    proxyless_low = _table("mnist-ofa", 0.01).latency_range(SPACE)[0]
    assert low < proxyless_low * 3 and low != proxyless_low  # OFA keeps >= 2 layers a stage; ProxylessNAS may skip all but fixed ones


def test_scaled_genes_run_from_the_fastest_to_the_slowest_subnet():
    genes = SubnetGenes(SPACE, 2, (24, 28))
    latency = SubnetLatency({"mnist-ofa": _table("mnist-ofa", 0.01), "mnist-ofa@r24": _table("mnist-ofa@r24", 0.007)})
    rng = np.random.default_rng(0)
    assert genes.scaled(0.0, rng) == genes.extreme(largest=False) and genes.scaled(1.0, rng) == genes.extreme(largest=True)
    means = [np.mean([latency(genes.architecture(genes.scaled(f, rng))) for _ in range(20)]) for f in (0.2, 0.5, 0.8)]
    assert means[0] < means[1] < means[2]
    with pytest.raises(ValueError, match="fraction"):
        genes.scaled(1.5, rng)
