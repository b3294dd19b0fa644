import pickle

import pytest
import torch

from raynas.checkpoints import CheckpointError, load_state_dict


def test_round_trip(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_state_dict(tmp_path / "ok.pt")["w"], torch.ones(2))


@pytest.mark.faults
def test_truncated_missing_and_foreign_files_are_refused(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state_dict(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "none.pt")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError):
        load_state_dict(tmp_path / "evil.pt")


class Exploit:
    def __reduce__(self):
        return (print, ("unpickled!",))
