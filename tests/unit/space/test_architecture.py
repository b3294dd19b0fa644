import subprocess
import sys

import pytest

from raynas.space.architecture import Architecture
from raynas.space.macro import SPACES, get_space

ARCH = Architecture("mnist-small", ("k3e3", "skip", "k5e6", "k7e3", "k3e6", "skip"))


def test_round_trips_through_dict_json_and_string():
    assert Architecture.from_dict(ARCH.to_dict()) == ARCH
    assert Architecture.from_json(ARCH.to_json()) == ARCH
    assert Architecture.from_string("mnist-small", ARCH.to_string()) == ARCH
    assert ARCH.to_string() == "k3e3|skip|k5e6|k7e3|k3e6|skip"


def test_id_is_stable_across_processes():
    code = f"from raynas.space.architecture import Architecture as A;print(A.from_json({ARCH.to_json()!r}).arch_id)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == ARCH.arch_id
    assert Architecture("mnist-small", ("k3e3",) * 6).arch_id != ARCH.arch_id


def test_skip_is_refused_where_the_shape_changes():
    first = get_space("mnist-small").layers()[0]
    assert not first.residual
    with pytest.raises(ValueError, match="layer 0: op 'skip' not allowed"):
        Architecture("mnist-small", ("skip", "k3e3", "k3e3", "k3e3", "k3e3", "k3e3"))


def test_wrong_length_and_unknown_space_are_refused():
    with pytest.raises(ValueError, match="has 6 layers"):
        Architecture("mnist-small", ("k3e3",))
    with pytest.raises(KeyError, match="valid names"):
        Architecture("nope", ())


@pytest.mark.parametrize("name", SPACES.names())
def test_every_space_has_mbconv_choices_and_some_skips(name):
    macro = get_space(name)
    layers, n_ops = macro.layers(), len(macro.kernels) * len(macro.expansions)
    assert all(len(spec.choices) == n_ops + spec.residual for spec in layers)
    assert any(spec.residual for spec in layers)
    assert not layers[0].residual or layers[0].in_channels == layers[0].out_channels
