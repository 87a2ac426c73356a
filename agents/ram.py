"""The Recurrent Attention Model (Mnih et al. 2014): glimpse, core, location, baseline, action nets.

Per step ``t`` the network reads a glimpse ``phi_t`` taken at fixation ``l_t``::

    g_t  = ReLU(W_g ReLU(W_phi phi_t) + W_l ReLU(W_loc l_t))         glimpse network
    h_t  = ReLU(W_h h_{t-1} + W_x g_t)   or an LSTM cell              core network
    mu_t = tanh(W_mu ReLU(W_m stop_grad(h_t)))                        location network
    b_t  = W_b stop_grad(h_t)                                         baseline
    p(y) = softmax(W_y h_T)                                           action network

The location network and the baseline read ``h_t`` through a stop-gradient, as in the original
PyTorch implementation: the classification loss alone trains the glimpse and core networks,
REINFORCE alone trains the location network, and the squared error alone trains the baseline.
Every layer size is its own setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["RAM", "RAMConfig"]


@dataclass(frozen=True)
class RAMConfig:
    """Sizes of the network. Defaults are the paper's and the original implementation's.

    Attributes:
        glimpse_shape: ``(k, g, g)`` of one glimpse (scales, patch side, patch side).
        glimpse_hidden: width of ``ReLU(W_phi phi)`` (the "what" hidden layer).
        location_hidden: width of ``ReLU(W_loc l)`` (the "where" hidden layer).
        glimpse_features: width of ``g_t``.
        core_size: width of ``h_t``.
        core: ``"rnn"`` (the paper's ReLU RNN) or ``"lstm"``.
        policy_hidden: width of the location network's hidden layer.
        num_classes: classes of the action network.
        glimpse_mean, glimpse_std: glimpses are standardised as ``(phi - mean) / std`` (the
            training images' intensity statistics, ``ram_env.datasets.PIXEL_STATS``; MNIST's
            by default).
        location_init: ``"random"`` (PyTorch's default init everywhere) or ``"center"``: the
            location network's output layer starts at zero, so the fixations it picks (from
            the second glimpse on; the first is the env's start) are the centre, ``mu_t = 0``,
            until REINFORCE moves them (Catch: there the coarsest scale sees the whole screen;
            docs/recipe.md).
    """

    glimpse_shape: tuple[int, int, int] = (1, 8, 8)
    glimpse_hidden: int = 128
    location_hidden: int = 128
    glimpse_features: int = 256
    core_size: int = 256
    core: str = "rnn"
    policy_hidden: int = 128
    num_classes: int = 10
    glimpse_mean: float = 0.1307
    glimpse_std: float = 0.3081
    location_init: str = "random"

    def __post_init__(self) -> None:
        if self.core not in ("rnn", "lstm"):
            raise ValueError(f"core must be 'rnn' or 'lstm', got {self.core!r}")
        if self.location_init not in ("random", "center"):
            raise ValueError(
                f"location_init must be 'random' or 'center', got {self.location_init!r}"
            )

    def to_dict(self) -> dict:
        """Plain values (as stored in checkpoints); ``from_dict`` inverts it."""
        return {**asdict(self), "glimpse_shape": list(self.glimpse_shape)}

    @classmethod
    def from_dict(cls, values: dict) -> RAMConfig:
        return cls(**{**values, "glimpse_shape": tuple(values["glimpse_shape"])})


class RAM(nn.Module):
    """The recurrent attention model; one call of ``step`` is one glimpse.

    State is ``(h,)`` for the RNN core and ``(h, c)`` for the LSTM core, each ``[B, core_size]``.
    """

    def __init__(self, config: RAMConfig) -> None:
        super().__init__()
        self.config = config
        glimpse_pixels = config.glimpse_shape[0] * config.glimpse_shape[1] * config.glimpse_shape[2]
        self.what = nn.Linear(glimpse_pixels, config.glimpse_hidden)
        self.where = nn.Linear(2, config.location_hidden)
        self.what_to_glimpse = nn.Linear(config.glimpse_hidden, config.glimpse_features)
        self.where_to_glimpse = nn.Linear(config.location_hidden, config.glimpse_features)
        if config.core == "lstm":
            self.core = nn.LSTMCell(config.glimpse_features, config.core_size)
        else:
            self.core_input = nn.Linear(config.glimpse_features, config.core_size)
            self.core_recurrent = nn.Linear(config.core_size, config.core_size)
        self.policy_hidden = nn.Linear(config.core_size, config.policy_hidden)
        self.policy_mean = nn.Linear(config.policy_hidden, 2)
        if config.location_init == "center":
            nn.init.zeros_(self.policy_mean.weight)
            nn.init.zeros_(self.policy_mean.bias)
        self.baseline_head = nn.Linear(config.core_size, 1)
        self.classifier = nn.Linear(config.core_size, config.num_classes)

    def initial_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Zero core state for ``batch`` episodes."""
        zeros = torch.zeros(batch, self.config.core_size, device=device)
        return (zeros, zeros.clone()) if self.config.core == "lstm" else (zeros,)

    def step(
        self, glimpse: torch.Tensor, location: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        """Fold one glimpse into the core state.

        Args:
            glimpse: float ``[B, k, g, g]`` intensities in ``[0, 1]``.
            location: float ``[B, 2]`` fixation the glimpse was taken at, in ``[-1, 1]``.
            state: the previous state (``initial_state`` at the first glimpse).

        Returns:
            The new state; ``state[0]`` is ``h_t`` ``[B, core_size]``.
        """
        phi = (glimpse.flatten(1) - self.config.glimpse_mean) / self.config.glimpse_std
        what = F.relu(self.what(phi))
        where = F.relu(self.where(location))
        features = F.relu(self.what_to_glimpse(what) + self.where_to_glimpse(where))
        if self.config.core == "lstm":
            return self.core(features, state)
        return (F.relu(self.core_input(features) + self.core_recurrent(state[0])),)

    def location_mean(self, hidden: torch.Tensor) -> torch.Tensor:
        """``mu_t`` ``[B, 2]`` in ``(-1, 1)`` from ``h_t`` (no gradient reaches ``h_t``)."""
        return torch.tanh(self.policy_mean(F.relu(self.policy_hidden(hidden.detach()))))

    def baseline(self, hidden: torch.Tensor) -> torch.Tensor:
        """``b_t`` ``[B]``, the expected reward from ``h_t`` (no gradient reaches ``h_t``)."""
        return self.baseline_head(hidden.detach()).squeeze(-1)

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log class probabilities ``[B, num_classes]`` from the last ``h_T``."""
        return F.log_softmax(self.classifier(hidden), dim=-1)
