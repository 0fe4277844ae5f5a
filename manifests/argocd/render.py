"""Writes argocd-cm-patch.yaml from health.lua (`make argocd`): the patch embeds the one
script once per kind, so the Lua has a single source. tests/unit/test_argocd_health.py
fails when the committed patch is stale."""
from __future__ import annotations

import sys
from pathlib import Path

from model_registry_operator import GROUP
from model_registry_operator.api import KINDS

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "health.lua"
PATCH = HERE / "argocd-cm-patch.yaml"

HEADER = """\
# Generated from health.lua by render.py: edit health.lua, then run `make argocd`.
# Argo CD health checks for the {group} kinds. Apply to Argo CD's namespace with
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file manifests/argocd/argocd-cm-patch.yaml
# or list this file under `patches:` in the kustomization that installs Argo CD.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
data:
"""


def health_key(kind: str) -> str:
    return f"resource.customizations.health.{GROUP}_{kind}"


def render(script: str | None = None) -> str:
    script = SCRIPT.read_text() if script is None else script
    # a literal block scalar keeps the script byte for byte (the test checks the round trip)
    body = "".join(f"    {line}" if line.strip() else "\n" for line in script.splitlines(keepends=True))
    return HEADER.format(group=GROUP) + "".join(f"  {health_key(kind)}: |\n{body}" for kind in KINDS)


def main() -> int:
    PATCH.write_text(render())
    print(f"wrote {PATCH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
