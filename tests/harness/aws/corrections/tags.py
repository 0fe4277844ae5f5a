"""AddTags / ListTags / DeleteTags on model packages, model package groups and models.

moto 5.2.5 looks resources up by splitting the ARN at "/" into exactly two parts, so a
versioned model package (``model-package/churn/3``) answers HTTP 500; it has no
"model-package" entry at all; a package created without tags has ``tags = None``; and
AddTags appends a second tag with the same key instead of overwriting it.
"""

from __future__ import annotations

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from ._common import ARN, backend_method

original_get_resource_from_arn = SageMakerModelBackend._get_resource_from_arn


def apply() -> None:
    """The replacements are registered by the decorators; nothing else to patch."""


@backend_method
def _get_resource_from_arn(self: SageMakerModelBackend, arn: str):
    match = ARN.match(arn or "")
    if match is None:
        raise ValidationError(f"Invalid ResourceArn {arn!r}: not a SageMaker ARN.")
    resource_type, resource_id = match.group("type"), match.group("id")
    lookups = {
        "model-package": lambda: self._harness_package(arn),
        "model-package-group": lambda: self._harness_group(arn),
        "model": lambda: self.describe_model(resource_id),
    }
    if resource_type in lookups:
        resource = lookups[resource_type]()
    else:
        resource = original_get_resource_from_arn(self, arn)
        if resource is None:
            raise ValidationError(f"Could not find resource {arn}.")
    if resource.tags is None:
        resource.tags = []
    return resource


@backend_method
def add_tags(self: SageMakerModelBackend, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    # AddTags: "Adds or overwrites one or more tags for the specified SageMaker resource.
    # ... Tag keys must be unique per resource." (botocore AddTags documentation)
    resource = self._get_resource_from_arn(arn)
    new_keys = {tag["Key"] for tag in tags}
    resource.tags = [tag for tag in resource.tags if tag["Key"] not in new_keys] + list(tags)
    return tags
