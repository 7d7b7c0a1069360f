import numpy as np
import torch

from neurodeploy.core.synapse import dense


def test_dense_converts_and_reorders_a_map_and_keeps_a_matrix_layout():
    spikes = torch.from_numpy(np.arange(2 * 3 * 4 * 5, dtype=np.int8).reshape(2, 3, 4, 5) % 3)
    as_map = dense(spikes, torch.float32)
    assert as_map.dtype == torch.float32
    assert as_map.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(as_map, spikes.to(torch.float32))
    assert dense(as_map) is as_map
    matrix = dense(spikes.reshape(2, -1), torch.float64)
    assert matrix.dtype == torch.float64 and matrix.is_contiguous()
