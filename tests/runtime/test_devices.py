"""resolve_device: preset strings to torch devices, bad names refused."""

import pytest
import torch

from etude.errors import BadInputError
from etude.runtime import resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto") == expected
    assert resolve_device() == expected


@pytest.mark.parametrize("name", ["gpu", "CUDA", "", "mps"])
def test_unknown_device_names_raise(name):
    with pytest.raises(BadInputError, match="device must be one of"):
        resolve_device(name)
