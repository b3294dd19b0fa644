import torch

from raynas.space.macro import get_space
from raynas.supernet.elastic import ElasticSupernet
from raynas.supernet.progressive import PHASES, ShrinkConfig, distillation_loss, phase_choices, train_progressive

SPACE = get_space("mnist-ofa")


def _batches(n=2):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 1, 28, 28, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(n)]


def test_phases_open_kernel_then_depth_then_width():
    net = ElasticSupernet(SPACE, 10, min_depth=2, resolutions=(20, 28))
    opened = [phase_choices(net, p) for p in PHASES]
    assert [c["kernels"] for c in opened] == [None, (3, 5, 7), (3, 5, 7), (3, 5, 7)]
    assert [c["depths"] for c in opened] == [None, None, (2, 3, 4), (2, 3, 4)]
    assert [c["expansions"] for c in opened] == [None, None, None, (3, 4, 6)]
    assert all(c["resolutions"] == (20, 28) for c in opened)


def test_distillation_is_zero_for_identical_outputs_and_positive_otherwise():
    logits = torch.randn(4, 10)
    assert distillation_loss(logits, logits, 2.0).abs() < 1e-6
    assert distillation_loss(logits, torch.randn(4, 10), 2.0) > 0


def test_training_writes_a_checkpoint_per_phase_and_resumes_without_retraining(tmp_path):
    cfg = ShrinkConfig(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1, resolutions=(20, 28))
    net = ElasticSupernet(SPACE, 10, min_depth=2, resolutions=(20, 28))
    stats = train_progressive(net, _batches(), cfg, seed=0, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-largest.pt", "1-kernel.pt", "2-depth.pt", "3-width.pt"]
    assert all(f"{p}_loss" in stats for p in PHASES)
    (tmp_path / "3-width.pt").unlink()
    again = ElasticSupernet(SPACE, 10, min_depth=2, resolutions=(20, 28))
    resumed = train_progressive(again, _batches(), cfg, seed=0, checkpoint_dir=tmp_path)
    assert [resumed.get(f"{p}_resumed") for p in PHASES] == [1.0, 1.0, 1.0, None]
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_a_resumed_run_sees_the_batches_an_uninterrupted_one_would(tmp_path):
    """The loader's shuffle and augmentation generator is restored with the skipped phases."""
    from raynas.data.device_loader import DeviceLoader, TensorImages

    images = TensorImages(torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8), torch.arange(24) % 10, torch.arange(24))

    def loader():
        return DeviceLoader(
            images, 4, device=torch.device("cpu"), mean=(0.5,), std=(0.3,), shuffle=True, drop_last=True, augment="crop-flip", seed=7
        )

    cfg = ShrinkConfig(largest_epochs=1, kernel_epochs=1, depth_epochs=1, width_epochs=1)
    torch.manual_seed(0)
    net = ElasticSupernet(SPACE, 10, min_depth=2)
    train_progressive(net, loader(), cfg, seed=0, checkpoint_dir=tmp_path / "whole")
    torch.manual_seed(0)
    first = ElasticSupernet(SPACE, 10, min_depth=2)
    train_progressive(first, loader(), cfg, seed=0, checkpoint_dir=tmp_path / "cut")
    (tmp_path / "cut" / "3-width.pt").unlink()
    torch.manual_seed(0)
    again = ElasticSupernet(SPACE, 10, min_depth=2)
    train_progressive(again, loader(), cfg, seed=0, checkpoint_dir=tmp_path / "cut")  # a fresh process: a fresh loader, three phases loaded
    assert (tmp_path / "cut" / "2-depth.loader.pt").is_file()
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
