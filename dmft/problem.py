"""The learning problem: target, student, data ratio, GD hyper-parameters, schedule."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .activations import Activation, get_activation
from .losses import Loss, check_labels, get_loss
from .schedules import Full, OnePass, Schedule, get_schedule
from .targets import Target, get_target
from .validation import integer, real

__all__ = ["Problem", "default_a", "DYNAMICS", "flow_steps"]

_PSD_TOL = 1e-10
DYNAMICS = ("gd", "flow")


def flow_steps(t_max: float, dt) -> tuple[int, float]:
    """Number of steps k_max = t_max / dt of a flow grid, and dt as a float.

    Raises ValueError naming dt unless dt > 0 and t_max / dt is an integer within 1e-9.

    Examples
    --------
    >>> flow_steps(10.0, 0.05)
    (200, 0.05)
    """
    dt = real("dt", dt, low=0.0, low_open=True)
    ratio = t_max / dt
    steps = int(round(ratio))
    if steps < 1 or abs(ratio - steps) > 1e-9 * max(1.0, ratio):
        raise ValueError(f"dt={dt!r} must divide t_max={t_max!r} into an integer number >= 1 "
                         f"of steps (t_max / dt = {ratio:.6g})")
    return steps, dt


def default_a(P: int) -> np.ndarray:
    """Paper's second layer: +1/sqrt(P) for even j (0-based), -1/sqrt(P) for odd j."""
    return np.where(np.arange(P) % 2 == 0, 1.0, -1.0) / np.sqrt(P)


def _float_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    try:
        raw = np.asarray(value)
        # strings, complex numbers and booleans would be converted silently (or with a warning)
        if raw.dtype.kind not in "iufO":
            raise TypeError
        arr = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real array of shape {shape}, got {value!r}") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr!r}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Problem:
    """One instance of GD on a two-layer network with a multi-index teacher (docs/theory/model.md).

    Parameters
    ----------
    target : str or Target
        Registry name (``dmft.TARGETS``) or a :class:`dmft.Target`; fixes K.
    P : int
        Number of hidden units, P >= 1.
    activation : str or Activation
        Registry name (``dmft.ACTIVATIONS``) or a :class:`dmft.Activation`.
    alpha : float
        Samples per dimension, n = alpha d, alpha > 0.
    eta : float
        Learning rate, eta > 0; default 0.2. Not given for ``dynamics="flow"``.
    lam : float
        Ridge (weight decay) strength, lam >= 0.
    T : int
        Number of time points t = 0..T-1 reported (T - 1 GD steps), T >= 1; default 7. Not
        given for ``dynamics="flow"`` (the solvers' ``dt`` fixes the grid t = k dt).
    a : array of shape (P,), optional
        Fixed second layer; default alternating +-1/sqrt(P).
    M0 : array of shape (P, K), optional
        Initial teacher overlap W0 W*^T / d; default 0.
    Q0 : array of shape (P, P), optional
        Initial student Gram W0 W0^T / d; symmetric with Q0 - M0 M0^T PSD; default I_P.
    schedule : str or schedule object
        ``"full"``, ``"one-pass"``, ``dmft.Cyclic(n_blocks)`` or ``dmft.Bernoulli(b)``.
    noise : float
        Label-noise variance Delta >= 0 (y = g*(z) + sqrt(Delta) xi); default 0 (the square
        loss only).
    dynamics : {"gd", "flow"}
        ``"gd"`` (default): gradient descent with step ``eta`` for T - 1 steps. ``"flow"``:
        gradient flow dW/dt = -lam W - sum_mu F_mu x_mu^T / sqrt(d), the eta -> 0 limit of GD
        at time t = eta * step, up to ``t_max`` (docs/theory/flow.md).
    t_max : float
        Final time of a flow problem, t_max > 0 (required for, and only for, ``"flow"``).
    temperature : float
        Langevin temperature tau >= 0 (default 0): GD adds sqrt(2 eta tau) Xi after each step
        (Xi a P x d matrix of i.i.d. N(0, 1), fresh each step), flow adds sqrt(2 tau) dB.
    loss : str or Loss
        Training loss L(f, y) of the output f = a.sigma(u): ``"square"`` ((y - f)^2 / 2, the
        default), ``"logistic"`` (log(1 + exp(-y f)), labels in [-1, 1]), ``"hinge"``
        (max(0, 1 - y f), meant for +-1 labels: others give a warning), ``"huber"`` or
        ``"huber(threshold)"``, or a :class:`dmft.Loss` (docs/guide/losses.md).

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or outside its range (the message names it and the range);
        a user target that fails on a small probe z or returns the wrong shape.

    Examples
    --------
    >>> import numpy as np, dmft
    >>> p = dmft.Problem(target="staircase", P=2.0, activation="erf", eta=0.1, T=10)
    >>> p.P, p.K, p.T
    (2, 2, 10)
    >>> def product(z):  # z has shape (K, S); return shape (S,)
    ...     return z[0] * z[1]
    >>> q = dmft.Problem(target=dmft.Target(product, K=2, name="product"), T=7.0,
    ...                  schedule=dmft.Cyclic(4))
    >>> q.target.name, q.T, str(q.schedule)
    ('product', 7, 'cyclic(4)')
    >>> f = dmft.Problem(target="he3", P=1, dynamics="flow", t_max=10, temperature=0.01)
    >>> f.dynamics, f.t_max, f.eta, f.T
    ('flow', 10.0, None, None)
    """

    target: str | Target = "tanh-he1-he3"
    P: int = 2
    activation: str | Activation = "relu"
    alpha: float = 3.0
    eta: float | None = None
    lam: float = 0.0
    T: int | None = None
    a: np.ndarray | None = None
    M0: np.ndarray | None = None
    Q0: np.ndarray | None = None
    schedule: Schedule | str = "full"
    noise: float = 0.0
    dynamics: str = "gd"
    t_max: float | None = None
    temperature: float = 0.0
    loss: str | Loss = "square"

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "target", get_target(self.target))
        self.target.check()  # a wrong user function fails here, not deep inside a solver
        s(self, "activation", get_activation(self.activation))
        s(self, "P", integer("P", self.P, low=1))
        self._check_dynamics()
        s(self, "alpha", real("alpha", self.alpha, low=0.0, low_open=True))
        s(self, "temperature", real("temperature", self.temperature, low=0.0))
        s(self, "lam", real("lam", self.lam, low=0.0))
        s(self, "noise", real("noise", self.noise, low=0.0))
        P, K = self.P, self.K
        s(self, "a", _float_array("a", default_a(P) if self.a is None else self.a, (P,)))
        s(self, "M0", _float_array("M0", np.zeros((P, K)) if self.M0 is None else self.M0, (P, K)))
        s(self, "Q0", _float_array("Q0", np.eye(P) if self.Q0 is None else self.Q0, (P, P)))
        scale = max(1.0, float(np.abs(self.Q0).max()))
        if not np.allclose(self.Q0, self.Q0.T, rtol=0, atol=1e-12 * scale):
            raise ValueError(f"Q0 must be symmetric, got {self.Q0!r}")
        with np.errstate(over="ignore", invalid="ignore"):
            perp = self.Q0 - self.M0 @ self.M0.T
            perp = 0.5 * (perp + perp.T)
        # overflow would give inf/nan, for which eigvalsh returns nan and the check below passes
        min_eig = float(np.linalg.eigvalsh(perp).min()) if np.all(np.isfinite(perp)) else -np.inf
        if not min_eig >= -_PSD_TOL * scale:
            raise ValueError(
                "Q0 - M0 M0^T must be positive semi-definite (Q0 is the student Gram matrix, "
                f"M0 its teacher overlap); its smallest eigenvalue is {min_eig:.3g} < 0 "
                f"for Q0={self.Q0.tolist()}, M0={self.M0.tolist()}"
            )
        s(self, "schedule", get_schedule(self.schedule))
        s(self, "loss", get_loss(self.loss))
        if not self.loss.half_square:
            check_labels(self.loss, self.target.probe(), self.noise, self.target.name)

    def _check_dynamics(self) -> None:
        """dynamics, and the time fields it needs: eta and T for GD, t_max for flow."""
        s = object.__setattr__
        if self.dynamics not in DYNAMICS:
            raise ValueError(f"dynamics must be one of {DYNAMICS}, got {self.dynamics!r}")
        if self.dynamics == "gd":
            if self.t_max is not None:
                raise ValueError(f"t_max={self.t_max!r} is only for dynamics='flow'; GD runs "
                                 "T - 1 steps of size eta (give T and eta)")
            s(self, "eta", real("eta", 0.2 if self.eta is None else self.eta, low=0.0,
                                low_open=True))
            s(self, "T", integer("T", 7 if self.T is None else self.T, low=1))
            return
        given = [name for name in ("eta", "T") if getattr(self, name) is not None]
        if given:
            raise ValueError(
                f"dynamics='flow' is the eta -> 0 limit of GD and takes no {' or '.join(given)} "
                f"(got {', '.join(f'{k}={getattr(self, k)!r}' for k in given)}): give t_max, "
                "and the solvers' dt for the time grid"
            )
        if self.t_max is None:
            raise ValueError("dynamics='flow' needs t_max, the final time (> 0)")
        s(self, "t_max", real("t_max", self.t_max, low=0.0, low_open=True))
        if not isinstance(get_schedule(self.schedule), (Full, OnePass)):
            raise ValueError(f"dynamics='flow' needs schedule 'full' (multi-pass gradient "
                             f"flow) or 'one-pass' (population flow), got {self.schedule!r}")

    # ------------------------------------------------------------------ derived quantities
    @property
    def is_flow(self) -> bool:
        """Whether this is a gradient-flow (continuous-time) problem."""
        return self.dynamics == "flow"

    def times(self, dt: float | None = None) -> np.ndarray:
        """The reported times: eta * step for GD (step = 0..T-1), k dt (k = 0..t_max/dt) for flow.

        Parameters
        ----------
        dt : float, optional
            Time step of a flow problem (required for, and only for, flow); t_max / dt must be
            an integer (within 1e-9).

        Examples
        --------
        >>> Problem(eta=0.5, T=3).times()
        array([0. , 0.5, 1. ])
        >>> Problem(dynamics="flow", t_max=1.0).times(0.25)
        array([0.  , 0.25, 0.5 , 0.75, 1.  ])
        """
        if not self.is_flow:
            if dt is not None:
                raise ValueError(f"dt={dt!r} is only for dynamics='flow'; GD's step is eta")
            return self.eta * np.arange(self.T)
        if dt is None:
            raise ValueError("dt is required for the times of a dynamics='flow' problem")
        steps, dt = flow_steps(self.t_max, dt)
        return dt * np.arange(steps + 1)

    @property
    def K(self) -> int:
        """Number of teacher directions."""
        return self.target.K

    @property
    def binary_labels(self) -> bool:
        """True when every label is +-1 (a binary target without label noise): solvers then
        also report the misclassification rate."""
        return self.noise == 0.0 and self.target.binary

    @property
    def Qperp0(self) -> np.ndarray:
        """Q0 - M0 M0^T, the covariance of the part of the student orthogonal to the teacher."""
        return self.Q0 - self.M0 @ self.M0.T

    def replace(self, **changes) -> Problem:
        """A copy with some fields changed (validated again)."""
        kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        # defaults that depend on P or K must follow a change of P or target
        if "P" in changes:
            for key in ("a", "Q0", "M0"):
                if key not in changes:
                    kw.pop(key)
        if "target" in changes and "M0" not in changes:
            kw.pop("M0", None)
        if changes.get("dynamics", self.dynamics) != self.dynamics:
            # GD's eta and T are meaningless for flow and flow's t_max for GD
            for key in ("eta", "T", "t_max"):
                if key not in changes:
                    kw.pop(key)
        kw.update(changes)
        for key in ("a", "M0", "Q0"):
            if key in kw and kw[key] is None:
                kw.pop(key)
        return Problem(**kw)

    def to_dict(self) -> dict:
        """JSON/HDF5-friendly description (targets and activations by name)."""
        return {
            "target": self.target.name,
            "P": self.P,
            "activation": self.activation.name,
            "alpha": self.alpha,
            "eta": self.eta,
            "lam": self.lam,
            "T": self.T,
            "a": self.a.tolist(),
            "M0": self.M0.tolist(),
            "Q0": self.Q0.tolist(),
            "schedule": str(self.schedule),
            "noise": self.noise,
            "K": self.K,
            # new fields only when they differ from the defaults, so that the dictionaries
            # (hashes, stored files) of the GD problems are unchanged
            **({"dynamics": self.dynamics, "t_max": self.t_max} if self.is_flow else {}),
            **({"temperature": self.temperature} if self.temperature else {}),
            # appended only when not the default, so that existing files and keys stay as they were
            **({} if self.loss.half_square else {"loss": self.loss.name}),
        }

    @classmethod
    def from_dict(cls, d: dict, *, target: Target | None = None,
                  activation: Activation | None = None, loss: Loss | None = None) -> Problem:
        """Rebuild from :meth:`to_dict`; user targets/activations/losses must be passed
        explicitly."""
        d = dict(d)
        d.pop("K", None)
        if loss is not None:
            d["loss"] = loss
        if target is not None:
            d["target"] = target
        if activation is not None:
            d["activation"] = activation
        return cls(**d)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (
            self.target == other.target
            and self.activation == other.activation
            and self.loss == other.loss
            and self.to_dict() == other.to_dict()
        )

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        d = self.to_dict()
        keys = ["target", "P", "activation", "alpha", "eta", "lam", "T", "schedule"]
        if self.is_flow:
            keys = ["target", "P", "activation", "alpha", "dynamics", "t_max", "lam", "schedule"]
        extra = [k for k in ("noise", "temperature", "loss") if d.get(k)]
        return "Problem(" + ", ".join(f"{k}={d[k]!r}" for k in keys + extra) + ")"
