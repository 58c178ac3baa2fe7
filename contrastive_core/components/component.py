"""The base every registered component derives from: a unique ``name`` and a typed params model.

A component kind (augmentation, encoder, head, loss, optimizer, scheduler, dataset, stage) is an
abstract subclass of :class:`Component`; a plugin registers concrete subclasses through the kind's
registration hook. A recipe section such as ``[loss]`` is validated against the ``Params`` model of the
class whose ``name`` equals its ``type`` key, and the component is then built with
:meth:`Component.from_params`, receiving only its own params.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..errors import Problem


class ComponentParams(BaseModel):
    """Base of every component's params model.

    Subclasses declare ``type: Literal["<component name>"]`` and one field per parameter, each with a
    docstring right under it: pydantic turns those docstrings into field descriptions, which
    ``contrastive list`` and ``contrastive schema`` show. Unknown keys are rejected (``extra="forbid"``),
    so a misspelled key is an error instead of a silently ignored setting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def recipe_warnings(self) -> list[Problem]:
        """Values that validate but are probably mistakes (a temperature far outside what the method's
        paper uses): ``contrastive validate`` and ``contrastive run`` print them as warnings and go on,
        since a user may mean them (a sweep). Paths are relative to these params (``"temperature"``).
        Refuse values that cannot work instead, with a field constraint or validator."""
        return []


class Component(ABC):
    """A named, typed building block that plugins register and recipes refer to by name.

    Class attributes every concrete component sets:

    * ``name``: unique within its kind; the value of ``type`` in a recipe.
    * ``Params``: a :class:`ComponentParams` subclass whose ``type`` field is ``Literal[name]``.

    ``kind`` is set by the abstract kind classes (``Loss``, ``Encoder``, ...), not by plugins.
    """

    kind: ClassVar[str]
    name: ClassVar[str]
    Params: ClassVar[type[ComponentParams]]

    @classmethod
    def from_params(cls, params: ComponentParams, **context: Any) -> Any:
        """Build the usable object from validated params and the run-time context of the kind.

        The default constructs ``cls(params, **context)``. Kinds whose product is not the component
        itself (an optimizer component returns a ``torch.optim.Optimizer``) override this.
        """
        return cls(params, **context)  # type: ignore[call-arg]

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring: the one-line description shown by ``contrastive list``."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
