"""Settings of the AI companion: attitude, composition, intensity, length and an optional LLM endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from maeum.errors import MaeumError


class CompanionError(MaeumError):
    """A companion problem: bad settings, a refused endpoint URL, or an endpoint that failed or replied garbage."""


ATTITUDES: dict[str, str] = {"friendly": "친근한", "polite": "정중한", "playful": "장난스러운"}
# In the order a comment uses them: feel with the user, comfort, then advise.
COMPOSITIONS: dict[str, str] = {"empathy": "공감", "comfort": "위로", "advice": "조언"}
INTENSITIES: dict[str, float] = {"creative": 1.0, "normal": 0.75, "calm": 0.5}
LENGTHS: dict[str, int] = {"short": 150, "medium": 300, "long": 450}


def _choose(kind: str, value: str, known: dict[str, object]) -> None:
    if value not in known:
        raise CompanionError(f"unknown {kind} {value!r}; choose one of: {', '.join(known)}")


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible chat endpoint, e.g. ``Endpoint("http://127.0.0.1:11434/v1", "llama3")``."""

    base_url: str
    model: str
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.base_url.strip():
            raise CompanionError("endpoint base_url is empty; give e.g. http://127.0.0.1:11434/v1")
        if not self.model.strip():
            raise CompanionError("endpoint model is empty; give the model name the server knows, e.g. llama3")

    def __repr__(self) -> str:  # never show the key in logs
        key = "***" if self.api_key else None
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, api_key={key!r})"


@dataclass(frozen=True)
class CompanionSettings:
    """How the companion writes: ``attitude``, ``composition`` (empty = all), ``intensity``, ``length``.

    ``endpoint`` is optional: without one the built-in offline generator writes the comment.
    ``allow_private_endpoint`` admits endpoints on private networks (loopback is always allowed).
    """

    attitude: str = "friendly"
    composition: frozenset[str] = field(default_factory=frozenset)
    intensity: str = "normal"
    length: str = "medium"
    endpoint: Endpoint | None = None
    allow_private_endpoint: bool = False

    def __post_init__(self) -> None:
        _choose("attitude", self.attitude, ATTITUDES)
        _choose("intensity", self.intensity, INTENSITIES)
        _choose("length", self.length, LENGTHS)
        if isinstance(self.composition, str):
            raise CompanionError("composition must be a set of names such as {'comfort', 'empathy'}, not a string")
        comp = frozenset(self.composition)
        for part in comp:
            _choose("composition part", part, COMPOSITIONS)
        object.__setattr__(self, "composition", comp)

    @property
    def parts(self) -> tuple[str, ...]:
        """Composition parts in a fixed order; all three when the composition is empty."""
        return tuple(p for p in COMPOSITIONS if not self.composition or p in self.composition)

    @property
    def temperature(self) -> float:
        """Sampling temperature for the intensity."""
        return INTENSITIES[self.intensity]

    @property
    def target_chars(self) -> int:
        """Target comment length in Korean characters."""
        return LENGTHS[self.length]
