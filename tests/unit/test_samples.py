"""The samples users copy parse with the API types and pass the CRD schema and CEL rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness import crd_validation
from model_registry_operator import API_VERSION
from model_registry_operator.api import KINDS, parse_spec, to_api

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("*.yaml"))


def crd_for(kind: str) -> dict:
    return yaml.safe_load((ROOT / "crds" / f"{KINDS[kind].plural}.yaml").read_text())


def test_the_samples_exist() -> None:
    kinds = [yaml.safe_load(path.read_text())["kind"] for path in SAMPLES]
    assert sorted(kinds) == [
        "Model",
        "Model",
        "ModelPackage",
        "ModelPackage",
        "ModelPackage",
        "ModelPackageGroup",
        "ModelPackageGroup",
    ]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_sample_is_valid(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    assert obj["apiVersion"] == API_VERSION
    spec = parse_spec(obj["kind"], obj["spec"])
    assert to_api(spec)  # something to send
    crd = crd_for(obj["kind"])
    assert crd_validation.prune(crd, obj) == obj, "the sample has fields the CRD would drop"
    defaulted = crd_validation.apply_defaults(crd, obj)
    assert crd_validation.validate(crd, defaulted) == []
    assert crd_validation.validate(crd, defaulted, old=defaulted) == []  # re-applying it is fine


def _sample(name: str) -> dict:
    return yaml.safe_load((ROOT / "manifests" / "samples" / name).read_text())


def test_samples_show_what_the_issue_asks() -> None:
    plain = _sample("modelpackage-modeldataurl.yaml")["spec"]
    assert plain["inferenceSpecification"]["containers"][0]["modelDataUrl"].startswith("s3://")
    assert "modelPackageGroupRef" in plain
    with_artifacts = _sample("modelpackage-artifacts.yaml")["spec"]
    assert (
        with_artifacts["inferenceSpecification"]["containers"][0]["modelDataArtifact"]
        == with_artifacts["artifacts"][0]["name"]
    )
    assert len(_sample("model-pipeline.yaml")["spec"]["containers"]) == 2
    assert "modelPackageRef" in _sample("model-from-package.yaml")["spec"]["primaryContainer"]


def test_sample_requests_have_the_api_shape() -> None:
    request = to_api(parse_spec("Model", _sample("model-pipeline.yaml")["spec"]))
    assert request["Containers"][0]["ContainerHostname"] == "preprocess"
    assert request["VpcConfig"]["Subnets"] and request["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert "RequireApprovedPackage" not in request and "requireApprovedPackage" not in request
    package = to_api(parse_spec("ModelPackage", _sample("modelpackage-artifacts.yaml")["spec"]))
    assert set(package) == {
        "ModelPackageDescription",
        "ModelApprovalStatus",
        "ApprovalDescription",
        "InferenceSpecification",
    }
    assert (
        "ModelDataUrl" not in package["InferenceSpecification"]["Containers"][0]
    )  # filled in by the operator


def test_the_model_card_sample_carries_the_registration_metadata_and_a_stage() -> None:
    """Seed 003's metadata of a registered transformer model, as a model package model card."""
    spec = _sample("modelpackage-model-card.yaml")["spec"]
    assert spec["modelLifeCycle"]["stage"] and spec["modelLifeCycle"]["stageStatus"]
    content = spec["modelCard"]["modelCardContent"]
    assert set(content["model_overview"]) == {"model_creator", "model_artifact"}  # the package card's
    details = content["additional_information"]["custom_details"]
    for key in ("model_type", "input_types", "input_languages", "output_types", "output_languages"):
        assert details[key]
    assert details["num_params"].isdigit() and details["index_page"].startswith("# ")
    assert all(isinstance(value, str) for value in details.values())
    assert content["intended_uses"]["purpose_of_model"]
    request = to_api(parse_spec("ModelPackage", spec))
    assert json.loads(request["ModelCard"]["ModelCardContent"]) == content  # sent as its JSON text
    assert request["ModelLifeCycle"] == {
        "Stage": "Development",
        "StageStatus": "InReview",
        "StageDescription": spec["modelLifeCycle"]["stageDescription"],
    }
    group = _sample("modelpackagegroup-code-summarizer.yaml")
    assert spec["modelPackageGroupRef"]["name"] == group["metadata"]["name"]
