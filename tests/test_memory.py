"""Global and local memory semantics (eq 3, 5, 6, 8)."""

from __future__ import annotations

import torch

from manet.inference.memory import GlobalMemory, LocalMemory


def test_global_memory_keeps_running_minimum_and_grows() -> None:
    memory = GlobalMemory(num_frames=3, grid=(2, 2), channels=1)
    assert torch.all(memory.read(0, 1) == 1.0)
    memory.write(1, torch.full((2, 2, 2), 0.5))
    assert memory.channels == 2
    memory.write(1, torch.tensor([[[0.25, 0.75], [0.5, 0.5]], [[0.9, 0.9], [0.9, 0.1]]]))
    result = memory.read(1, 2)
    assert torch.allclose(result[0], torch.tensor([[0.25, 0.5], [0.5, 0.5]]))
    assert torch.allclose(result[1], torch.tensor([[0.5, 0.5], [0.5, 0.1]]), atol=1e-3)
    assert torch.all(memory.read(0, 2) == 1.0), "other frames untouched"


def test_global_memory_without_aggregation_keeps_first_written_map() -> None:
    memory = GlobalMemory(num_frames=1, grid=(1, 2), channels=2)
    memory.write(0, torch.full((2, 1, 2), 0.6), aggregate=False)
    memory.mark_written(2)
    memory.write(0, torch.full((3, 1, 2), 0.2), aggregate=False)
    result = memory.read(0, 3)
    assert torch.allclose(result[:2], torch.full((2, 1, 2), 0.6), atol=1e-3)
    assert torch.allclose(result[2], torch.full((1, 2), 0.2), atol=1e-3), "a new object takes its first map"


def test_local_memory_reads_nearest_annotated_round_within_r() -> None:
    memory = LocalMemory()
    for round_index, annotated in enumerate([10, 2, 7]):
        memory.begin_round(annotated)
        for frame in range(12):
            memory.write(frame, torch.full((1, 1, 1), float(round_index)))
    # R = 2: rounds 1 (annotated at 2) and 2 (annotated at 7) are candidates.
    assert float(memory.read(3, 2)) == 1.0
    assert float(memory.read(9, 2)) == 2.0
    # R = 3 brings round 0 (annotated at 10) back for frame 11.
    assert float(memory.read(11, 3)) == 0.0
    # R = 1 reads the current round only.
    assert float(memory.read(0, 1)) == 2.0
    assert memory.chosen_round(11, 3) == 0


def test_local_memory_ties_prefer_recent_and_new_channels_come_from_newest() -> None:
    memory = LocalMemory()
    memory.begin_round(4)
    memory.write(5, torch.zeros(1, 1, 1))
    memory.begin_round(6)
    memory.write(5, torch.ones(2, 1, 1))
    result = memory.read(5, 2)
    assert result.shape == (2, 1, 1)
    assert torch.all(result == 1.0), "equal distance: the most recent round wins"
    memory.begin_round(5)
    memory.write(4, torch.full((3, 1, 1), 2.0))
    memory.write(5, torch.full((3, 1, 1), 2.0))
    memory.discard_last_round()
    assert torch.all(memory.read(5, 2) == 1.0)
