"""Input contracts of the gateways app."""

from typing import Annotated

from pydantic import Field

from core.specs import Spec

_NAME = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ClusterSpec(Spec):
    name: _NAME
    description: str = Field(default="", max_length=500)
    labels: dict[Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=253)]] = Field(
        default_factory=dict, max_length=50
    )
