"""A minimal kopf operator for the emulator self-test, run as a separate process:

    KUBECONFIG=... python -m kopf run --standalone --namespace NS widget_operator.py

It writes status on create and update, and holds deletion with its finalizer until the
delete handler has run (it says so in an Event, which the test looks for).
"""

import kopf

GROUP, VERSION, PLURAL = "selftest.example.com", "v1", "widgets"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.watching.server_timeout = 30  # the emulator then closes each watch, kopf reconnects
    settings.watching.client_timeout = 40


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(spec, patch, logger, **_):
    patch.status["phase"] = "Ready"
    patch.status["observedSize"] = spec["size"]
    logger.info("widget created")


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def updated(spec, patch, **_):
    patch.status["observedSize"] = spec["size"]


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(name, body, **_):
    kopf.info(body, reason="CleanedUp", message=f"widget {name} cleaned up")
