"""Who owns a SageMaker group, version or model: the stable identity of a Kubernetes object.

Kubernetes UIDs change whenever an object is created again (a `kubectl delete` with `Retain`
and a new apply, a cluster rebuilt from Git), so they cannot tell what an object owns. Its
identity does: `<instance>/<namespace>/<name>`, the instance being an operator setting
(`--instance`, `MRO_INSTANCE`) that two clusters sharing an AWS account set differently.
The kind is implied by what is marked: only a ModelPackageGroup owns a group, a ModelPackage
a version, a Model a model.

Every group and model the operator creates carries the identity as the tag IDENTITY_KEY, and
every version as the customer metadata entry IDENTITY_KEY. Earlier releases marked them with
the object's UID (OWNER_UID_KEY): still recognised, so an upgrade makes no duplicate and
stalls nothing; the identity mark is added when such an object is next claimed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from . import GROUP, OWNER_UID_KEY

IDENTITY_KEY = f"{GROUP}/identity"
# Keys the operator writes on what it owns: never the spec's to set, change or remove.
MARKER_KEYS = frozenset({IDENTITY_KEY, OWNER_UID_KEY})


@dataclass(frozen=True)
class Identity:
    instance: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.instance}/{self.namespace}/{self.name}"

    def marks(self) -> dict[str, str]:
        """The tag or customer metadata entries that say so."""
        return {IDENTITY_KEY: str(self)}


class Claim(enum.Enum):
    MINE = "mine"  # marked with this identity, or with this object's UID by an earlier release
    UNMARKED = "unmarked"  # made by hand, in Studio, by a pipeline
    OTHERS = "others"  # marked with another identity (or another UID by an earlier release)


@dataclass(frozen=True)
class Ownership:
    claim: Claim
    other: str = ""  # whose, for OTHERS: "instance/namespace/name", or "UID ..." for a legacy mark
    marked: bool = False  # MINE, and already carrying the identity mark (not only the legacy UID)

    @property
    def mine(self) -> bool:
        return self.claim is Claim.MINE

    def owner_text(self) -> str:
        """`the Kubernetes object team-b/churn of operator instance default` (for messages)."""
        if self.other.startswith("UID "):
            return f"another Kubernetes object ({self.other}, marked by an earlier release)"
        instance, _, rest = self.other.partition("/")
        return f"the Kubernetes object {rest} of operator instance {instance}"


def ownership(marks: Mapping[str, str], identity: Identity, uid: str) -> Ownership:
    """Whose the SageMaker object with these tags (or customer metadata) is."""
    marked = marks.get(IDENTITY_KEY)
    if marked:
        if marked == str(identity):
            return Ownership(Claim.MINE, marked=True)
        return Ownership(Claim.OTHERS, other=marked)
    legacy = marks.get(OWNER_UID_KEY)
    if legacy:
        return Ownership(Claim.MINE) if legacy == uid else Ownership(Claim.OTHERS, other=f"UID {legacy}")
    return Ownership(Claim.UNMARKED)
